//! Parser tests: the examples of the text-format and OpenMetrics specs, Prometheus 2.53's own parser test
//! vectors, and a property test of the fast parser against a deliberately naive reference parser.

use super::*;
use model::labels;
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
enum Out {
    S { series: String, labels: Labels, bits: u64, ts: Option<i64> },
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Comment,
}

fn s(series: &str, labels: Labels, v: f64, ts: Option<i64>) -> Out {
    Out::S { series: series.into(), labels, bits: v.to_bits(), ts }
}

fn collect(input: &[u8], f: Format) -> Result<Vec<Out>, ParseError> {
    let mut p = Parser::new(input, f);
    let mut out = Vec::new();
    while let Some(e) = p.next()? {
        out.push(match e {
            Entry::Series(se) => Out::S {
                series: String::from_utf8_lossy(se.series).into_owned(),
                labels: p.series_labels(se.series)?,
                bits: se.value.to_bits(),
                ts: se.timestamp,
            },
            Entry::Help { name, help } => Out::Help(name.into(), help.into_owned()),
            Entry::Type { name, kind } => Out::Type(name.into(), kind),
            Entry::Unit { name, unit } => Out::Unit(name.into(), unit.into()),
            Entry::Comment => Out::Comment,
        });
    }
    Ok(out)
}

#[test]
fn prometheus_promparse_vectors() {
    let mut input = String::from(
        r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# 	TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
go_gc_duration_seconds{quantile="0.8", a="b"} 8.3835e-05
go_gc_duration_seconds{ quantile="0.9", a="b"} 8.3835e-05
# Hrandom comment starting with prefix of HELP
#
wind_speed{A="2",c="3"} 12345
# comment with escaped \n newline
# comment with escaped \ escape character
# HELP nohelp1
# HELP nohelp2 
go_gc_duration_seconds{ quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile= "1.0", a= "b", } 8.3835e-05
go_gc_duration_seconds { quantile = "1.0", a = "b" } 8.3835e-05
go_gc_duration_seconds { quantile = "2.0" a = "b" } 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"}	1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33  	123123
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1"#,
    );
    input += "\n# HELP metric foo\x00bar";
    input += "\nnull_byte_metric{a=\"abc\x00\"} 1";

    let g = "go_gc_duration_seconds";
    let q = |qv: &str, a: bool| {
        if a {
            labels! {"__name__" => g, "quantile" => qv, "a" => "b"}
        } else {
            labels! {"__name__" => g, "quantile" => qv}
        }
    };
    let want = vec![
        Out::Help(g.into(), "A summary of the GC invocation durations.".into()),
        Out::Type(g.into(), MetricType::Summary),
        s(r#"go_gc_duration_seconds{quantile="0"}"#, q("0", false), 4.9351e-05, None),
        s(r#"go_gc_duration_seconds{quantile="0.25",}"#, q("0.25", false), 7.424100000000001e-05, None),
        s(r#"go_gc_duration_seconds{quantile="0.5",a="b"}"#, q("0.5", true), 8.3835e-05, None),
        s(r#"go_gc_duration_seconds{quantile="0.8", a="b"}"#, q("0.8", true), 8.3835e-05, None),
        s(r#"go_gc_duration_seconds{ quantile="0.9", a="b"}"#, q("0.9", true), 8.3835e-05, None),
        Out::Comment,
        Out::Comment,
        s(r#"wind_speed{A="2",c="3"}"#, labels! {"A" => "2", "__name__" => "wind_speed", "c" => "3"}, 12345.0, None),
        Out::Comment,
        Out::Comment,
        Out::Help("nohelp1".into(), "".into()),
        Out::Help("nohelp2".into(), "".into()),
        s(r#"go_gc_duration_seconds{ quantile="1.0", a="b" }"#, q("1.0", true), 8.3835e-05, None),
        s(r#"go_gc_duration_seconds { quantile="1.0", a="b" }"#, q("1.0", true), 8.3835e-05, None),
        s(r#"go_gc_duration_seconds { quantile= "1.0", a= "b", }"#, q("1.0", true), 8.3835e-05, None),
        s(r#"go_gc_duration_seconds { quantile = "1.0", a = "b" }"#, q("1.0", true), 8.3835e-05, None),
        s(r#"go_gc_duration_seconds { quantile = "2.0" a = "b" }"#, q("2.0", true), 8.3835e-05, None),
        s("go_gc_duration_seconds_count", labels! {"__name__" => "go_gc_duration_seconds_count"}, 99.0, None),
        s(r#"some:aggregate:rate5m{a_b="c"}"#, labels! {"__name__" => "some:aggregate:rate5m", "a_b" => "c"}, 1.0, None),
        Out::Help("go_goroutines".into(), "Number of goroutines that currently exist.".into()),
        Out::Type("go_goroutines".into(), MetricType::Gauge),
        s("go_goroutines", labels! {"__name__" => "go_goroutines"}, 33.0, Some(123123)),
        s("_metric_starting_with_underscore", labels! {"__name__" => "_metric_starting_with_underscore"}, 1.0, None),
        s(
            r#"testmetric{_label_starting_with_underscore="foo"}"#,
            labels! {"__name__" => "testmetric", "_label_starting_with_underscore" => "foo"},
            1.0,
            None,
        ),
        s(r#"testmetric{label="\"bar\""}"#, labels! {"__name__" => "testmetric", "label" => "\"bar\""}, 1.0, None),
        Out::Help("metric".into(), "foo\x00bar".into()),
        s("null_byte_metric{a=\"abc\x00\"}", labels! {"__name__" => "null_byte_metric", "a" => "abc\x00"}, 1.0, None),
    ];
    let got = collect(input.as_bytes(), Format::PromText).unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i}");
    }
}

#[test]
fn prometheus_promparse_error_vectors() {
    let bad: &[(&[u8], &str)] = &[
        (b"a", "expected value after metric"),
        (b"a{b='c'} 1\n", "expected label value"),
        (b"a{b=\n", "unterminated"),
        (b"a{\xff=\"foo\"} 1\n", "expected label name"),
        (b"a{b=\"\xff\"} 1\n", "invalid UTF-8 label value"),
        (br#"{"a", "b = "c"}"#, ""),
        (b"{\"a\",b\\nc=\"d\"} 1", "expected equal"),
        (b"a true\n", "bad value"),
        (b"something_weird{problem=\"", "unterminated"),
        (b"empty_label_name{=\"\"} 0", "expected label name"),
        (b"foo 1_2\n", "bad value"),
        (b"foo 0x1p-3\n", "bad value"),
        (b"foo 0x1P-3\n", "bad value"),
        (b"foo 0 1_2\n", "expected next entry after timestamp"),
        (br#"{a="ok"} 1"#, "metric name not set"),
        (b"# TYPE #\n#EOF\n", "expected metric name after TYPE"),
        (b"# HELP #\n#EOF\n", "expected metric name after HELP"),
        (b"a{b=\x00\"ssss\"} 1\n", "expected label value"),
        (b"a{b\x00=\"hiih\"}\t1", "expected equal"),
        (b"a\x00{b=\"ddd\"} 1", "bad value"),
        (b"a 0 1\x00", "expected next entry after timestamp"),
        (b"a{b=\"1\",b=\"2\"} 1\n", "label name \"b\" is not unique"),
        (b"a 1 -5\n", "expected timestamp or new record"),
        (b"# TYPE a foo\n", "invalid metric type"),
    ];
    for (input, want) in bad {
        match collect(input, Format::PromText) {
            Ok(v) => panic!("{:?}: expected error, got {v:?}", String::from_utf8_lossy(input)),
            Err(e) => assert!(e.to_string().contains(want), "{:?}: {e}", String::from_utf8_lossy(input)),
        }
    }
    let good: &[&[u8]] = &[
        b"null_byte_metric{a=\"abc\x00\"} 1",
        b"a{b=\"\x00ss\"} 1\n",
        b"a{b=\"\x00\"} 1\n",
        b"",
        b"\n\n  \n",
        b"# only a comment",
    ];
    for input in good {
        collect(input, Format::PromText).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)));
    }
}

#[test]
fn error_carries_line_number() {
    let e = collect(b"a 1\nb 2\n# TYPE c counter\nc{x=} 3\n", Format::PromText).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().starts_with("line 4: "), "{e}");
    let e = collect(b"a 1\nb two\n# EOF\n", Format::OpenMetrics).unwrap_err();
    assert_eq!(e.line, 2);
}

/// The example from the Prometheus text exposition format documentation (exposition_formats.md).
#[test]
fn text_format_spec_example() {
    let input = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf 3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;
    let got = collect(input.as_bytes(), Format::PromText).unwrap();
    let series: Vec<&Out> = got.iter().filter(|o| matches!(o, Out::S { .. })).collect();
    assert_eq!(series.len(), 20);
    assert_eq!(
        *series[0],
        s(
            r#"http_requests_total{method="post",code="200"}"#,
            labels! {"__name__" => "http_requests_total", "method" => "post", "code" => "200"},
            1027.0,
            Some(1395066363000)
        )
    );
    let Out::S { labels, .. } = series[2] else { unreachable!() };
    assert_eq!(labels.get("path"), Some(r"C:\DIR\FILE.TXT"));
    assert_eq!(labels.get("error"), Some("Cannot find file:\n\"FILE.TXT\""));
    let Out::S { bits, ts, .. } = series[4] else { unreachable!() };
    assert_eq!(f64::from_bits(*bits), f64::INFINITY);
    assert_eq!(*ts, Some(3982045));
    assert!(got.contains(&Out::Type("rpc_duration_seconds".into(), MetricType::Summary)));
    // The spec's own example uses a negative timestamp, which Prometheus's lexer (`{D}+`) rejects; so do we.
    assert!(collect(b"something_weird{problem=\"division by zero\"} +Inf -3982045\n", Format::PromText).is_err());
}

#[test]
fn special_values() {
    let got = collect(b"a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\nf 1e3\ng -0.5\nh .5\n", Format::PromText).unwrap();
    let vals: Vec<u64> = got.iter().map(|o| if let Out::S { bits, .. } = o { *bits } else { 0 }).collect();
    assert_eq!(vals[0], NORMAL_NAN_BITS);
    assert!(!model::is_stale_nan(f64::from_bits(vals[0])));
    assert_eq!(f64::from_bits(vals[1]), f64::INFINITY);
    assert_eq!(f64::from_bits(vals[2]), f64::NEG_INFINITY);
    assert_eq!(f64::from_bits(vals[3]), f64::INFINITY);
    assert_eq!(vals[4], NORMAL_NAN_BITS);
    assert_eq!(f64::from_bits(vals[5]), 1000.0);
    assert_eq!(f64::from_bits(vals[6]), -0.5);
    assert_eq!(f64::from_bits(vals[7]), 0.5);
}

#[test]
fn prometheus_openmetrics_vectors() {
    let mut input = String::from(
        r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
# HELP nohelp1 
# HELP help2 escape \ \n \\ \" \x chars
# UNIT nounit 
go_gc_duration_seconds{quantile="1.0",a="b"} 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"} 1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33 123.123
# TYPE hh histogram
hh_bucket{le="+Inf"} 1
# TYPE gh gaugehistogram
gh_bucket{le="+Inf"} 1
# TYPE hhh histogram
hhh_bucket{le="+Inf"} 1 # {id="histogram-bucket-test"} 4
hhh_count 1 # {id="histogram-count-test"} 4
# TYPE ggh gaugehistogram
ggh_bucket{le="+Inf"} 1 # {id="gaugehistogram-bucket-test",xx="yy"} 4 123.123
ggh_count 1 # {id="gaugehistogram-count-test",xx="yy"} 4 123.123
# TYPE smr_seconds summary
smr_seconds_count 2.0 # {id="summary-count-test"} 1 123.321
smr_seconds_sum 42.0 # {id="summary-sum-test"} 1 123.321
# TYPE ii info
ii{foo="bar"} 1
# TYPE ss stateset
ss{ss="foo"} 1
ss{ss="bar"} 0
ss{A="a"} 0
# TYPE un unknown
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1
# TYPE foo counter
foo_total 17.0 1520879607.789 # {id="counter-test"} 5"#,
    );
    input += "\n# HELP metric foo\x00bar";
    input += "\nnull_byte_metric{a=\"abc\x00\"} 1";
    input += "\n# EOF\n";
    let got = collect(input.as_bytes(), Format::OpenMetrics).unwrap();
    assert!(got.contains(&Out::Unit("go_gc_duration_seconds".into(), "seconds".into())));
    assert!(got.contains(&Out::Help("help2".into(), "escape \\ \n \\ \" \\x chars".into())));
    assert!(got.contains(&Out::Help("nohelp1".into(), "".into())));
    assert!(got.contains(&Out::Unit("nounit".into(), "".into())));
    assert!(got.contains(&Out::Type("gh".into(), MetricType::GaugeHistogram)));
    assert!(got.contains(&Out::Type("ss".into(), MetricType::Stateset)));
    assert!(got.contains(&Out::Type("ii".into(), MetricType::Info)));
    assert!(got.contains(&s("go_goroutines", labels! {"__name__" => "go_goroutines"}, 33.0, Some(123123))));
    assert!(got.contains(&s("ggh_count", labels! {"__name__" => "ggh_count"}, 1.0, None)));
    assert!(got.contains(&s("foo_total", labels! {"__name__" => "foo_total"}, 17.0, Some(1520879607789))));
    assert!(got.contains(&s("smr_seconds_sum", labels! {"__name__" => "smr_seconds_sum"}, 42.0, None)));
    let n = got.iter().filter(|o| matches!(o, Out::S { .. })).count();
    assert_eq!(n, 24);
}

#[test]
fn prometheus_openmetrics_error_vectors() {
    let bad: &[(&[u8], &str)] = &[
        (b"", "data does not end with # EOF"),
        (b"\n", "expected a valid start token"),
        (b"metric", "expected value after metric"),
        (b"metric 1", "data does not end with # EOF"),
        (b"metric 1\n", "data does not end with # EOF"),
        (b"metric_total 1 # {aa=\"bb\"} 4", "data does not end with # EOF"),
        (b"a\n#EOF\n", "expected value after metric"),
        (b"\n\n#EOF\n", "expected a valid start token"),
        (b" a 1\n#EOF\n", "expected a valid start token"),
        (b"9\n#EOF\n", "expected a valid start token"),
        (b"# TYPE u untyped\n#EOF\n", "invalid metric type \"untyped\""),
        (b"# TYPE c counter \n#EOF\n", "invalid metric type \"counter \""),
        (b"#  TYPE c counter\n#EOF\n", "expected a valid start token"),
        (b"# TYPE \n#EOF\n", "expected metric name after TYPE"),
        (b"# TYPE m\n#EOF\n", "expected text in TYPE"),
        (b"# UNIT metric suffix\n#EOF\n", "unit \"suffix\" not a suffix of metric \"metric\""),
        (b"# UNIT metricsuffix suffix\n#EOF\n", "unit \"suffix\" not a suffix of metric \"metricsuffix\""),
        (b"# UNIT m suffix\n#EOF\n", "unit \"suffix\" not a suffix of metric \"m\""),
        (b"# UNIT \n#EOF\n", "expected metric name after UNIT"),
        (b"# UNIT m\n#EOF\n", "expected text in UNIT"),
        (b"# HELP \n#EOF\n", "expected metric name after HELP"),
        (b"# HELP m\n#EOF\n", "expected text in HELP"),
        (b"a\t1\n#EOF\n", "expected value after metric"),
        (b"a 1\t2\n#EOF\n", "bad value"),
        (b"a 1 2 \n#EOF\n", "expected next entry after timestamp"),
        (b"a 1 2 #\n#EOF\n", "expected next entry after timestamp"),
        (b"a 1 1z\n#EOF\n", "bad timestamp"),
        (b" # EOF\n", "expected a valid start token"),
        (b"# EOF\na 1", "unexpected data after # EOF"),
        (b"# EOF\n\n", "unexpected data after # EOF"),
        (b"# EOFa 1", "expected a valid start token"),
        (b"#\tTYPE c counter\n", "expected a valid start token"),
        (b"# TYPE c  counter\n", "invalid metric type \" counter\""),
        (b"a 1 1 1\n# EOF\n", "expected next entry after timestamp"),
        (b"a{b='c'} 1\n# EOF\n", "expected label value"),
        (b"a{,b=\"c\"} 1\n# EOF\n", "expected label name"),
        (b"a{b=\"c\"d=\"e\"} 1\n# EOF\n", "expected comma or brace close"),
        (b"a{b=\"c\",,d=\"e\"} 1\n# EOF\n", "expected label name"),
        (b"a{b=\n# EOF\n", "unterminated"),
        (b"a{\xff=\"foo\"} 1\n# EOF\n", "expected label name"),
        (b"a{b=\"\xff\"} 1\n# EOF\n", "invalid UTF-8 label value"),
        (b"a true\n", "bad value"),
        (b"something_weird{problem=\"\n# EOF\n", "unterminated"),
        (b"empty_label_name{=\"\"} 0\n# EOF\n", "expected label name"),
        (b"foo 1_2\n\n# EOF\n", "bad value"),
        (b"foo 0x1p-3\n\n# EOF\n", "bad value"),
        (b"foo 0 1_2\n\n# EOF\n", "bad timestamp"),
        (b"custom_metric_total 1 # {aa=bb}\n# EOF\n", "in exemplar"),
        (b"custom_metric_total 1 # {aa=\"bb\"}\n# EOF\n", "expected value after exemplar labels"),
        (b"custom_metric_total 1 # {aa=\"bb\"}", "expected value after exemplar labels"),
        (b"custom_metric_total 1 # {bb}", "in exemplar"),
        (b"custom_metric_total 1 # {bb, a=\"dd\"}", "in exemplar"),
        (b"custom_metric_total 1 # {aa=\"bb\",,cc=\"dd\"} 1", "in exemplar"),
        (b"custom_metric_total 1 # {aa=\"bb\"} 1_2", "bad exemplar value"),
        (b"custom_metric_total 1 # {aa=\"bb\"} true", "bad exemplar value"),
        (b"custom_metric_total 1 # {aa=\"bb\",cc=}", "in exemplar"),
        (b"{b=\"c\",} 1\n# EOF\n", "metric name not set"),
        (b"a 1 NaN\n# EOF\n", "invalid timestamp NaN"),
        (b"a 1 -Inf\n# EOF\n", "invalid timestamp -inf"),
        (b"a 1 Inf\n# EOF\n", "invalid timestamp inf"),
        (b"# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN\n# EOF\n", "invalid timestamp NaN"),
        (b"#", "expected a valid start token"),
        (b"# H", "expected a valid start token"),
    ];
    for (input, want) in bad {
        match collect(input, Format::OpenMetrics) {
            Ok(v) => panic!("{:?}: expected error, got {v:?}", String::from_utf8_lossy(input)),
            Err(e) => assert!(e.to_string().contains(want), "{:?}: {e}", String::from_utf8_lossy(input)),
        }
    }
    for input in [&b"# EOF"[..], b"# EOF\n", b"null_byte_metric{a=\"abc\x00\"} 1\n# EOF\n", b"a{b=\"\x00\"} 1\n# EOF"] {
        collect(input, Format::OpenMetrics).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)));
    }
}

/// Examples from the OpenMetrics 1.0 specification.
#[test]
fn openmetrics_spec_examples() {
    let input = r#"# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
acme_http_router_request_seconds_sum{path="/api/v2",method="POST"} 479.3
acme_http_router_request_seconds_count{path="/api/v2",method="POST"} 34.0
acme_http_router_request_seconds_created{path="/api/v2",method="POST"} 1605281325.0
# TYPE go_goroutines gauge
# HELP go_goroutines Number of goroutines that currently exist.
go_goroutines 69
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
# HELP process_cpu_seconds Total user and system CPU time spent in seconds.
process_cpu_seconds_total 4.20072246e+06
# TYPE foo histogram
foo_bucket{le="0.0"} 0
foo_bucket{le="1e-05"} 0
foo_bucket{le="0.0001"} 5
foo_bucket{le="+Inf"} 17 # {trace_id="KOO5S4vxi0o"} 0.67
foo_count 17
foo_sum 324789.3
foo_created 1520430000.123
# TYPE a_gauge gauge
a_gauge{a="1"} 1 1520879607.789
# TYPE my_info info
my_info_info{name="pretty name"} 1
# TYPE my_stateset stateset
my_stateset{feature="a"} 1
my_stateset{feature="b"} 0
# EOF
"#;
    let got = collect(input.as_bytes(), Format::OpenMetrics).unwrap();
    // `_created` series are ingested as ordinary series (Prometheus 2.53 without created-timestamp ingestion).
    assert!(got.contains(&s(
        r#"acme_http_router_request_seconds_created{path="/api/v1",method="GET"}"#,
        labels! {"__name__" => "acme_http_router_request_seconds_created", "path" => "/api/v1", "method" => "GET"},
        1605281325.0,
        None
    )));
    assert!(got.contains(&s("foo_created", labels! {"__name__" => "foo_created"}, 1520430000.123, None)));
    assert!(got.contains(&Out::Unit("process_cpu_seconds".into(), "seconds".into())));
    assert!(got.contains(&s(r#"a_gauge{a="1"}"#, labels! {"__name__" => "a_gauge", "a" => "1"}, 1.0, Some(1520879607789))));
    assert_eq!(got.iter().filter(|o| matches!(o, Out::S { .. })).count(), 19);
}

#[test]
fn content_type_selects_format() {
    assert_eq!(Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"), Format::OpenMetrics);
    assert_eq!(Format::from_content_type("application/openmetrics-text;version=0.0.1"), Format::OpenMetrics);
    assert_eq!(Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"), Format::PromText);
    assert_eq!(Format::from_content_type(""), Format::PromText);
    assert_eq!(Format::from_content_type("application/json"), Format::PromText);
}

// ---------------------------------------------------------------------------------------------------------
// Reference parser: obviously correct and slow. Line-based, Prometheus text format only, one state at a time.

type RefOut = Vec<(Labels, u64, Option<i64>)>;

fn reference_parse(input: &str) -> Option<RefOut> {
    let mut out = Vec::new();
    for line in input.split('\n') {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut name = String::new();
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
            name.push(chars[i]);
            i += 1;
        }
        let mut pairs: Vec<(String, String)> = vec![("__name__".into(), name)];
        let skip = |i: &mut usize| {
            while *i < chars.len() && (chars[*i] == ' ' || chars[*i] == '\t') {
                *i += 1;
            }
        };
        let mut j = i;
        skip(&mut j);
        if j < chars.len() && chars[j] == '{' {
            i = j + 1;
            loop {
                skip(&mut i);
                if chars.get(i) == Some(&'}') {
                    i += 1;
                    break;
                }
                let mut ln = String::new();
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    ln.push(chars[i]);
                    i += 1;
                }
                skip(&mut i);
                if chars.get(i) != Some(&'=') {
                    return None;
                }
                i += 1;
                skip(&mut i);
                if chars.get(i) != Some(&'"') {
                    return None;
                }
                i += 1;
                let mut v = String::new();
                loop {
                    match chars.get(i)? {
                        '"' => break,
                        '\\' => {
                            i += 1;
                            match chars.get(i)? {
                                'n' => v.push('\n'),
                                '\\' => v.push('\\'),
                                '"' => v.push('"'),
                                c => {
                                    v.push('\\');
                                    v.push(*c)
                                }
                            }
                        }
                        c => v.push(*c),
                    }
                    i += 1;
                }
                i += 1;
                pairs.push((ln, v));
                skip(&mut i);
                if chars.get(i) == Some(&',') {
                    i += 1;
                }
            }
        }
        let rest: String = chars[i..].iter().collect();
        let fields: Vec<&str> = rest.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
        let v: f64 = match fields.first()? {
            &"+Inf" | &"Inf" => f64::INFINITY,
            &"-Inf" => f64::NEG_INFINITY,
            &"NaN" => f64::from_bits(NORMAL_NAN_BITS),
            f => f.parse().ok()?,
        };
        let ts = match fields.get(1) {
            Some(t) => Some(t.parse().ok()?),
            None => None,
        };
        if fields.len() > 2 {
            return None;
        }
        out.push((Labels::from_pairs(&pairs), v.to_bits(), ts));
    }
    Some(out)
}

fn fast_parse(input: &str) -> Option<RefOut> {
    collect(input.as_bytes(), Format::PromText).ok().map(|v| {
        v.into_iter()
            .filter_map(|o| match o {
                Out::S { labels, bits, ts, .. } => Some((labels, bits, ts)),
                _ => None,
            })
            .collect()
    })
}

fn ws() -> impl Strategy<Value = String> {
    prop_oneof![Just(""), Just(" "), Just("\t"), Just("  ")].prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        Just("NaN".to_string()),
        Just("+Inf".to_string()),
        Just("-Inf".to_string()),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("Z9"), Just(" "), Just("\\\\"), Just("\\\""), Just("\\n"), Just("é"), Just("{}"), Just(",")],
        0..5,
    )
    .prop_map(|v| v.concat())
}

fn line() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
        proptest::option::of(proptest::collection::vec(("[a-z_][a-z0-9_]{0,4}", label_value(), ws()), 0..4)),
        ws(),
        value(),
        proptest::option::of(0u32..2_000_000_000),
        ws(),
        any::<bool>(),
    )
        .prop_map(|(name, labels, lead, v, ts, trail, comma)| {
            let mut s = format!("{lead}{name}");
            if let Some(ls) = labels {
                // Distinct names: duplicate names are an error in both parsers' callers.
                let mut seen = std::collections::HashSet::new();
                let ls: Vec<_> = ls.into_iter().filter(|(n, _, _)| seen.insert(n.clone())).collect();
                s.push('{');
                for (i, (n, lv, w)) in ls.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&format!("{w}{n}{w}={w}\"{lv}\"{w}"));
                }
                if comma && !ls.is_empty() {
                    s.push(',');
                }
                s.push('}');
            }
            s.push_str(&format!(" {v}"));
            if let Some(t) = ts {
                s.push_str(&format!(" {t}"));
            }
            s.push_str(&trail);
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn fast_parser_agrees_with_reference(
        lines in proptest::collection::vec(prop_oneof![
            4 => line(),
            1 => Just("# HELP x some help".to_string()),
            1 => Just("# TYPE x counter".to_string()),
            1 => Just("# a comment".to_string()),
            1 => Just("".to_string()),
        ], 0..12),
        final_newline in any::<bool>(),
    ) {
        let mut input = lines.join("\n");
        if final_newline {
            input.push('\n');
        }
        let fast = fast_parse(&input);
        let slow = reference_parse(&input);
        prop_assert!(fast.is_some(), "fast parser rejected valid input {:?}", input);
        prop_assert_eq!(fast, slow, "input {:?}", input);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..200), om in any::<bool>()) {
        let f = if om { Format::OpenMetrics } else { Format::PromText };
        let _ = collect(&b, f);
    }

    #[test]
    fn never_panics_on_mutated_valid_input(lines in proptest::collection::vec(line(), 1..5), pos in any::<usize>(), byte in any::<u8>()) {
        let mut b = lines.join("\n").into_bytes();
        let i = pos % b.len();
        b[i] = byte;
        let _ = collect(&b, Format::PromText);
        b.extend_from_slice(b"\n# EOF\n");
        let _ = collect(&b, Format::OpenMetrics);
    }
}
