//! Lowers promql-parser's AST into the engine's tree: parentheses dropped, matchers compiled into
//! `model::Matcher`s (metric name included), durations and offsets in milliseconds, `@ start()`/`@ end()` and
//! `@ <t>` resolved to absolute milliseconds, functions resolved to [`Func`].
//!
//! `@` is kept absolute rather than rewritten into per-evaluation offsets (Prometheus's
//! `setOffsetForAtModifier`): a selector with `@ T` reads at `T - offset` at every step, which is what the
//! offset rewriting computes.

use model::{Labels, LabelsBuilder, MatchOp, Matcher, METRIC_NAME};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::token::{self, TokenId};
use promql_parser::parser::{
    AtModifier, BinModifier, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use std::time::{Duration, SystemTime};

use crate::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// All must match. Includes `__name__="<name>"` when the selector names a metric.
    pub matchers: Vec<Matcher>,
    /// promql-parser's `a="1" or b="2"` extension: when non-empty, a series matching any one group is
    /// selected (each group already includes the name matcher).
    pub or_matchers: Vec<Vec<Matcher>>,
    pub offset: i64,
    pub at: Option<i64>,
    /// Labels `absent()` reports for this selector (Prometheus's createLabelsForAbsentFunction).
    pub absent_labels: Labels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le)
    }
    /// Arithmetic drops the metric name; comparisons and set operators keep it.
    pub fn drops_metric_name(self) -> bool {
        matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Atan2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

#[derive(Debug, Clone)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on(...)` when true, `ignoring(...)` (or nothing) when false.
    pub on: bool,
    /// Sorted.
    pub labels: Vec<String>,
    /// `group_left(...)`/`group_right(...)` labels copied from the "one" side.
    pub include: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    pub return_bool: bool,
    pub matching: Matching,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
}

#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub op: AggOp,
    pub expr: Node,
    pub param: Option<Node>,
    /// Sorted.
    pub grouping: Vec<String>,
    pub without: bool,
}

macro_rules! funcs {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// Every function the engine evaluates (Prometheus 2.53's list, plus the 3.x name of holt_winters).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func { $($variant),* }
        impl Func {
            pub fn from_name(s: &str) -> Option<Func> {
                match s { $($name => Some(Func::$variant),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $(Func::$variant => $name),* }
            }
        }
    };
}

funcs! {
    Abs = "abs", Absent = "absent", AbsentOverTime = "absent_over_time", Acos = "acos", Acosh = "acosh",
    Asin = "asin", Asinh = "asinh", Atan = "atan", Atanh = "atanh", AvgOverTime = "avg_over_time",
    Ceil = "ceil", Changes = "changes", Clamp = "clamp", ClampMax = "clamp_max", ClampMin = "clamp_min",
    Cos = "cos", Cosh = "cosh", CountOverTime = "count_over_time", DaysInMonth = "days_in_month",
    DayOfMonth = "day_of_month", DayOfWeek = "day_of_week", DayOfYear = "day_of_year", Deg = "deg",
    Delta = "delta", Deriv = "deriv", Exp = "exp", Floor = "floor", HistogramAvg = "histogram_avg",
    HistogramCount = "histogram_count", HistogramFraction = "histogram_fraction",
    HistogramQuantile = "histogram_quantile", HistogramSum = "histogram_sum",
    HistogramStddev = "histogram_stddev", HistogramStdvar = "histogram_stdvar", HoltWinters = "holt_winters",
    DoubleExponentialSmoothing = "double_exponential_smoothing", Hour = "hour", Idelta = "idelta",
    Increase = "increase", Irate = "irate", LabelReplace = "label_replace", LabelJoin = "label_join",
    Ln = "ln", Log10 = "log10", Log2 = "log2", LastOverTime = "last_over_time", MadOverTime = "mad_over_time",
    MaxOverTime = "max_over_time", MinOverTime = "min_over_time", Minute = "minute", Month = "month",
    Pi = "pi", PredictLinear = "predict_linear", PresentOverTime = "present_over_time",
    QuantileOverTime = "quantile_over_time", Rad = "rad", Rate = "rate", Resets = "resets", Round = "round",
    Scalar = "scalar", Sgn = "sgn", Sin = "sin", Sinh = "sinh", Sort = "sort", SortDesc = "sort_desc",
    SortByLabel = "sort_by_label", SortByLabelDesc = "sort_by_label_desc", Sqrt = "sqrt",
    StddevOverTime = "stddev_over_time", StdvarOverTime = "stdvar_over_time", SumOverTime = "sum_over_time",
    Tan = "tan", Tanh = "tanh", Time = "time", Timestamp = "timestamp", Vector = "vector", Year = "year",
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    VectorSel(Selector),
    MatrixSel {
        sel: Selector,
        range: i64,
    },
    Subquery {
        expr: Box<Node>,
        range: i64,
        /// 0: the engine's no-step interval.
        step: i64,
        offset: i64,
        at: Option<i64>,
    },
    Neg(Box<Node>),
    Binary(Box<Binary>),
    Aggregate(Box<Aggregate>),
    Call {
        func: Func,
        args: Vec<Node>,
        ret: ValueType,
    },
}

impl Node {
    pub fn value_type(&self) -> ValueType {
        match self {
            Node::Number(_) => ValueType::Scalar,
            Node::Str(_) => ValueType::String,
            Node::VectorSel(_) | Node::Aggregate(_) => ValueType::Vector,
            Node::MatrixSel { .. } | Node::Subquery { .. } => ValueType::Matrix,
            Node::Neg(e) => e.value_type(),
            Node::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar && b.rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Node::Call { ret, .. } => *ret,
        }
    }
}

fn ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

fn at_ms(a: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match a {
        None => None,
        Some(AtModifier::Start) => Some(start),
        Some(AtModifier::End) => Some(end),
        Some(AtModifier::At(t)) => Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => ms(&d),
            Err(e) => -ms(&e.duration()),
        }),
    }
}

fn lower_matcher(m: &promql_parser::label::Matcher) -> Result<Matcher, String> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::Regex,
        PMatchOp::NotRe(_) => MatchOp::NotRegex,
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
}

pub(crate) fn lower_selector(vs: &VectorSelector, start: i64, end: i64) -> Result<Selector, String> {
    let name = vs.name.as_ref().map(|n| Matcher::equal(METRIC_NAME, n.clone()));
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    for m in &vs.matchers.matchers {
        matchers.push(lower_matcher(m)?);
    }
    let mut or_matchers = Vec::with_capacity(vs.matchers.or_matchers.len());
    for group in &vs.matchers.or_matchers {
        let mut g = Vec::with_capacity(group.len() + 1);
        for m in group {
            g.push(lower_matcher(m)?);
        }
        if let Some(n) = &name {
            g.push(n.clone());
        }
        or_matchers.push(g);
    }
    // Only equality matchers that appear once name a label `absent()` can report.
    let mut b = LabelsBuilder::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !seen.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    let absent_labels = b.build();
    if let Some(n) = name {
        matchers.push(n);
    }
    Ok(Selector { matchers, or_matchers, offset: offset_ms(&vs.offset), at: at_ms(&vs.at, start, end), absent_labels })
}

fn label_list(l: &promql_parser::label::Labels) -> Vec<String> {
    let mut v = l.labels.clone();
    v.sort();
    v.dedup();
    v
}

fn lower_binop(id: TokenId) -> Option<BinOp> {
    Some(match id {
        token::T_ADD => BinOp::Add,
        token::T_SUB => BinOp::Sub,
        token::T_MUL => BinOp::Mul,
        token::T_DIV => BinOp::Div,
        token::T_MOD => BinOp::Mod,
        token::T_POW => BinOp::Pow,
        token::T_ATAN2 => BinOp::Atan2,
        token::T_EQLC => BinOp::Eq,
        token::T_NEQ => BinOp::Ne,
        token::T_GTR => BinOp::Gt,
        token::T_LSS => BinOp::Lt,
        token::T_GTE => BinOp::Ge,
        token::T_LTE => BinOp::Le,
        token::T_LAND => BinOp::And,
        token::T_LOR => BinOp::Or,
        token::T_LUNLESS => BinOp::Unless,
        _ => return None,
    })
}

fn lower_aggop(id: TokenId) -> Option<AggOp> {
    Some(match id {
        token::T_SUM => AggOp::Sum,
        token::T_AVG => AggOp::Avg,
        token::T_COUNT => AggOp::Count,
        token::T_MIN => AggOp::Min,
        token::T_MAX => AggOp::Max,
        token::T_GROUP => AggOp::Group,
        token::T_STDDEV => AggOp::Stddev,
        token::T_STDVAR => AggOp::Stdvar,
        token::T_TOPK => AggOp::Topk,
        token::T_BOTTOMK => AggOp::Bottomk,
        token::T_COUNT_VALUES => AggOp::CountValues,
        token::T_QUANTILE => AggOp::Quantile,
        _ => return None,
    })
}

fn lower_matching(op: BinOp, m: &Option<BinModifier>) -> Result<Matching, QueryError> {
    let set_op = matches!(op, BinOp::And | BinOp::Or | BinOp::Unless);
    let mut out = Matching {
        card: if set_op { Card::ManyToMany } else { Card::OneToOne },
        on: false,
        labels: Vec::new(),
        include: Vec::new(),
    };
    if let Some(m) = m {
        if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
            return Err(QueryError::NotSupported("fill modifiers in binary operations".into()));
        }
        match &m.matching {
            Some(LabelModifier::Include(l)) => {
                out.on = true;
                out.labels = label_list(l);
            }
            Some(LabelModifier::Exclude(l)) => out.labels = label_list(l),
            None => {}
        }
        match &m.card {
            VectorMatchCardinality::OneToOne => {}
            VectorMatchCardinality::ManyToMany => out.card = Card::ManyToMany,
            VectorMatchCardinality::ManyToOne(l) => {
                out.card = Card::ManyToOne;
                out.include = l.labels.clone();
            }
            VectorMatchCardinality::OneToMany(l) => {
                out.card = Card::OneToMany;
                out.include = l.labels.clone();
            }
        }
        if set_op {
            out.card = Card::ManyToMany;
        }
    }
    Ok(out)
}

/// Lowers a parsed expression for a query over `[start, end]` (ms; equal for instant queries).
pub(crate) fn lower(e: &Expr, start: i64, end: i64) -> Result<Node, QueryError> {
    Ok(match e {
        Expr::Paren(p) => lower(&p.expr, start, end)?,
        Expr::NumberLiteral(n) => Node::Number(n.val),
        Expr::StringLiteral(s) => Node::Str(s.val.clone()),
        Expr::VectorSelector(vs) => Node::VectorSel(lower_selector(vs, start, end).map_err(QueryError::Parse)?),
        Expr::MatrixSelector(m) => Node::MatrixSel {
            sel: lower_selector(&m.vs, start, end).map_err(QueryError::Parse)?,
            range: ms(&m.range),
        },
        Expr::Subquery(s) => Node::Subquery {
            expr: Box::new(lower(&s.expr, start, end)?),
            range: ms(&s.range),
            step: s.step.as_ref().map(ms).unwrap_or(0),
            offset: offset_ms(&s.offset),
            at: at_ms(&s.at, start, end),
        },
        Expr::Unary(u) => Node::Neg(Box::new(lower(&u.expr, start, end)?)),
        Expr::Binary(b) => {
            let op = lower_binop(b.op.id())
                .ok_or_else(|| QueryError::Parse(format!("unsupported binary operator {}", b.op)))?;
            let matching = lower_matching(op, &b.modifier)?;
            Node::Binary(Box::new(Binary {
                op,
                lhs: lower(&b.lhs, start, end)?,
                rhs: lower(&b.rhs, start, end)?,
                return_bool: b.modifier.as_ref().is_some_and(|m| m.return_bool),
                matching,
            }))
        }
        Expr::Aggregate(a) => {
            let op = lower_aggop(a.op.id())
                // limitk/limit_ratio are Prometheus 3 additions the parser knows; 2.53 rejects them as unknown.
                .ok_or_else(|| QueryError::Parse(format!("unknown aggregation operator {:?}", a.op.to_string())))?;
            let (grouping, without) = match &a.modifier {
                None => (Vec::new(), false),
                Some(LabelModifier::Include(l)) => (label_list(l), false),
                Some(LabelModifier::Exclude(l)) => (label_list(l), true),
            };
            Node::Aggregate(Box::new(Aggregate {
                op,
                expr: lower(&a.expr, start, end)?,
                param: match &a.param {
                    Some(p) => Some(lower(p, start, end)?),
                    None => None,
                },
                grouping,
                without,
            }))
        }
        Expr::Call(c) => {
            let func = Func::from_name(c.func.name)
                // Functions of later Prometheus versions that the parser knows: 2.53 does not have them.
                .ok_or_else(|| QueryError::Parse(format!("unknown function with name {:?}", c.func.name)))?;
            if matches!(
                func,
                Func::HistogramAvg
                    | Func::HistogramCount
                    | Func::HistogramFraction
                    | Func::HistogramSum
                    | Func::HistogramStddev
                    | Func::HistogramStdvar
            ) {
                // These read native histograms only; storage here holds floats, so Prometheus would return
                // nothing for every input. Say so instead of silently returning empty results.
                return Err(QueryError::NotSupported(format!(
                    "{}() needs native histograms, which this engine does not evaluate",
                    func.name()
                )));
            }
            let mut args = Vec::with_capacity(c.args.args.len());
            for a in &c.args.args {
                args.push(lower(a, start, end)?);
            }
            let ret = match c.func.return_type {
                promql_parser::parser::value::ValueType::Scalar => ValueType::Scalar,
                promql_parser::parser::value::ValueType::Vector => ValueType::Vector,
                promql_parser::parser::value::ValueType::Matrix => ValueType::Matrix,
                promql_parser::parser::value::ValueType::String => ValueType::String,
            };
            Node::Call { func, args, ret }
        }
        Expr::Extension(_) => return Err(QueryError::NotSupported("extension expressions".into())),
    })
}
