//! Lineage: the graph around a name, and its layout as SVG.
//!
//! For a model name: its releases (the `supersedes` chain between them), the datasets each was
//! trained on (`trainingData`) and the models each derives from (`baseModels`). For a dataset
//! name: its versions, and the model releases that list each in `trainingData` (the
//! `trained_on` index). Arrows point from a declaration to what it names.
//!
//! Large graphs stay readable by a cap: at most `limit` nodes per column are drawn; the page
//! says how many were left out and links to the same page with a larger limit ("show more",
//! up to [`MAX_LIMIT`]). [`build`] reads (blocking); [`layout`] is pure and is what the tests
//! check.

use std::collections::HashMap;

use serde::Serialize;

use crate::admission::declaration::Declaration;
use crate::admission::logged_declaration;
use crate::server::search::Query;
use crate::server::storage::Store;

use super::text::{svg_label, truncate};
use super::view::ViewError;

/// Nodes per column when the request sets no limit.
pub const DEFAULT_LIMIT: usize = 12;
/// The largest limit a request may ask for.
pub const MAX_LIMIT: usize = 400;

/// Columns, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// Models the name's releases derive from.
    BaseModels,
    /// The name's own declarations.
    Versions,
    /// For a model: the datasets it was trained on. For a dataset: the models trained on it.
    Related,
}

const COLUMNS: [Column; 3] = [Column::BaseModels, Column::Versions, Column::Related];

/// A declaration in the graph.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// Its log index (`None` for a reference whose entry the log does not have under the head).
    pub index: Option<u64>,
    /// `model` or `dataset`.
    pub kind: &'static str,
    pub name: String,
    pub version: Option<String>,
    pub column: Column,
}

/// `from` names `to`.
#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    /// Positions in [`Graph::nodes`].
    pub from: usize,
    pub to: usize,
    /// `supersedes`, `trained_on`, or a base model relation (`finetune`, …).
    pub relation: String,
    /// A training dataset's role (`pretraining`, …).
    pub role: Option<String>,
}

/// The graph around a name, capped.
#[derive(Clone, Debug, Serialize)]
pub struct Graph {
    pub name: String,
    /// `model` or `dataset`: the kind of the name's declarations.
    pub kind: &'static str,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Nodes left out of each column by the cap, indexed like [`Column`].
    pub hidden: [usize; 3],
    pub limit: usize,
}

impl Graph {
    fn new(name: &str, kind: &'static str, limit: usize) -> Graph {
        Graph {
            name: name.to_string(),
            kind,
            nodes: Vec::new(),
            edges: Vec::new(),
            hidden: [0; 3],
            limit,
        }
    }

    fn column_len(&self, c: Column) -> usize {
        self.nodes.iter().filter(|n| n.column == c).count()
    }

    /// Adds `node` unless its column is full (then it is counted as hidden); its position.
    /// A node already present (same column and index) is not added twice.
    pub fn add(&mut self, node: Node) -> Option<usize> {
        if let Some(i) = node.index.and_then(|index| {
            self.nodes
                .iter()
                .position(|n| n.column == node.column && n.index == Some(index))
        }) {
            return Some(i);
        }
        if self.column_len(node.column) >= self.limit {
            self.hidden[node.column as usize] += 1;
            return None;
        }
        self.nodes.push(node);
        Some(self.nodes.len() - 1)
    }

    fn edge(&mut self, from: usize, to: Option<usize>, relation: &str, role: Option<String>) {
        if let Some(to) = to {
            self.edges.push(Edge {
                from,
                to,
                relation: relation.to_string(),
                role,
            });
        }
    }

    /// Whether anything was left out.
    pub fn truncated(&self) -> bool {
        self.hidden.iter().any(|&h| h > 0)
    }
}

/// The graph around `name` in the first `size` entries, at most `limit` nodes per column.
///
/// # Errors
/// [`ViewError::UnknownName`] if no declaration has that name; storage errors.
pub fn build(store: &Store, name: &str, size: u64, limit: usize) -> Result<Graph, ViewError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let prefix = Query::Name(name.to_string()).prefix();
    // One more than the cap tells whether versions were left out.
    let indexes = store.search(&prefix, 0, size, limit + 1)?;
    let mut versions = Vec::new();
    for &i in &indexes {
        if let Ok(Some(d)) = logged_declaration(&store.logged_entry(i)?) {
            versions.push((i, d));
        }
    }
    let Some((_, first)) = versions.first() else {
        return Err(ViewError::UnknownName(name.to_string()));
    };
    let kind = match first {
        Declaration::Model(_) => "model",
        Declaration::Dataset(_) => "dataset",
    };
    let mut g = Graph::new(name, kind, limit);
    let mut position: HashMap<u64, usize> = HashMap::new();
    for (i, d) in &versions {
        if let Some(p) = g.add(node(Some(*i), d, Column::Versions)) {
            position.insert(*i, p);
        }
    }
    if indexes.len() > limit {
        // The count beyond the cap is not read: say "more", at least one.
        g.hidden[Column::Versions as usize] = g.hidden[Column::Versions as usize].max(1);
    }
    // supersedes, between shown versions.
    for (i, d) in &versions {
        if let (Some(&from), Some(s)) = (position.get(i), d.supersedes()) {
            let to = position.get(&s.log_index).copied();
            g.edge(from, to, "supersedes", None);
        }
    }
    // Releases often name the same datasets: each referenced entry is read once.
    let mut seen: HashMap<(u64, Column), Option<Node>> = HashMap::new();
    let mut referenced = |index: Option<u64>, column: Column| -> Result<Option<Node>, ViewError> {
        let Some(i) = index else { return Ok(None) };
        if let Some(n) = seen.get(&(i, column)) {
            return Ok(n.clone());
        }
        let n = referenced(store, Some(i), column)?;
        seen.insert((i, column), n.clone());
        Ok(n)
    };
    for (i, d) in &versions {
        let Some(&from) = position.get(i) else {
            continue;
        };
        match d {
            Declaration::Model(m) => {
                for t in &m.training_data {
                    let index = match t.log_index {
                        Some(x) => Some(x),
                        None => first_with_subject(store, t.digest.0, size)?,
                    };
                    let target = referenced(index, Column::Related)?;
                    let to = target.and_then(|n| g.add(n));
                    g.edge(from, to, "trained_on", Some(t.role.as_str().to_string()));
                }
                for b in &m.base_models {
                    let index = match b.log_index {
                        Some(x) => Some(x),
                        None => first_with_subject(store, b.digest.0, size)?,
                    };
                    let target = referenced(index, Column::BaseModels)?;
                    let to = target.and_then(|n| g.add(n));
                    g.edge(from, to, b.relation.as_str(), None);
                }
            }
            Declaration::Dataset(ds) => {
                let models =
                    store.search(&Query::TrainedOn(ds.digest.0).prefix(), 0, size, limit + 1)?;
                for m in models {
                    let leaf = store.logged_entry(m)?;
                    let Ok(Some(d)) = logged_declaration(&leaf) else {
                        continue;
                    };
                    let role = match &d {
                        Declaration::Model(mr) => mr
                            .training_data
                            .iter()
                            .find(|t| t.digest == ds.digest)
                            .map(|t| t.role.as_str().to_string()),
                        Declaration::Dataset(_) => None,
                    };
                    if let Some(p) = g.add(node(Some(m), &d, Column::Related)) {
                        g.edges.push(Edge {
                            from: p,
                            to: from,
                            relation: "trained_on".into(),
                            role,
                        });
                    }
                }
            }
        }
    }
    Ok(g)
}

fn node(index: Option<u64>, d: &Declaration, column: Column) -> Node {
    Node {
        index,
        kind: match d {
            Declaration::Model(_) => "model",
            Declaration::Dataset(_) => "dataset",
        },
        name: d.name().as_str().to_string(),
        version: Some(d.version().to_string()),
        column,
    }
}

/// The node of the logged declaration at `index`, if it is one.
fn referenced(
    store: &Store,
    index: Option<u64>,
    column: Column,
) -> Result<Option<Node>, ViewError> {
    let Some(i) = index else { return Ok(None) };
    let Some(leaf) = store.entry(i)? else {
        return Ok(None);
    };
    Ok(logged_declaration(&leaf)
        .ok()
        .flatten()
        .map(|d| node(Some(i), &d, column)))
}

fn first_with_subject(
    store: &Store,
    digest: [u8; 32],
    size: u64,
) -> Result<Option<u64>, ViewError> {
    Ok(store
        .search(&Query::SubjectDigest(digest).prefix(), 0, size, 1)?
        .first()
        .copied())
}

/// Node box size and spacing, in SVG user units.
pub const NODE_W: u32 = 250;
pub const NODE_H: u32 = 48;
const ROW_GAP: u32 = 18;
const COL_GAP: u32 = 110;
const MARGIN: u32 = 24;
const HEADER: u32 = 28;
/// Characters of a label drawn; the whole label is the node's `<title>`.
const LABEL_CHARS: usize = 30;

/// A node placed.
#[derive(Clone, Debug)]
pub struct PlacedNode {
    pub x: u32,
    pub y: u32,
    /// The link target, `/entry/N`.
    pub href: Option<String>,
    /// Drawn text: name (shortened), then version and index.
    pub line1: String,
    pub line2: String,
    /// The whole label, for `<title>`.
    pub title: String,
    /// CSS classes: `node model`, `node dataset`, plus `focus` for the name's own.
    pub class: &'static str,
}

/// An edge placed: an SVG path and where its label sits.
#[derive(Clone, Debug)]
pub struct PlacedEdge {
    pub path: String,
    pub class: &'static str,
    pub label: String,
    pub label_x: u32,
    pub label_y: u32,
}

/// A column's heading.
#[derive(Clone, Debug)]
pub struct Heading {
    pub x: u32,
    pub text: &'static str,
    /// "+ N more" under the column when capped.
    pub hidden: usize,
    pub hidden_y: u32,
}

/// The drawing of a graph.
#[derive(Clone, Debug)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<PlacedNode>,
    pub edges: Vec<PlacedEdge>,
    pub headings: Vec<Heading>,
}

/// Places `g`'s nodes in columns (empty columns take no room), one row each, in the order
/// they were added, and routes its edges.
pub fn layout(g: &Graph) -> Layout {
    let used: Vec<Column> = COLUMNS
        .into_iter()
        .filter(|c| g.nodes.iter().any(|n| n.column == *c) || *c == Column::Versions)
        .collect();
    let x_of = |c: Column| {
        let k = used.iter().position(|u| *u == c).unwrap_or(0) as u32;
        MARGIN + 40 + k * (NODE_W + COL_GAP)
    };
    let mut row = [0u32; 3];
    let mut at = Vec::with_capacity(g.nodes.len());
    let mut nodes = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let r = &mut row[n.column as usize];
        let (x, y) = (x_of(n.column), MARGIN + HEADER + *r * (NODE_H + ROW_GAP));
        *r += 1;
        at.push((x, y));
        let full = match &n.version {
            Some(v) => format!("{}@{v}", n.name),
            None => n.name.clone(),
        };
        nodes.push(PlacedNode {
            x,
            y,
            href: n.index.map(|i| format!("/entry/{i}")),
            line1: truncate(&svg_label(&n.name), LABEL_CHARS),
            line2: truncate(
                &match (&n.version, n.index) {
                    (Some(v), Some(i)) => svg_label(&format!("{v} \u{b7} #{i}")),
                    (Some(v), None) => svg_label(v),
                    (None, Some(i)) => format!("#{i}"),
                    (None, None) => String::new(),
                },
                LABEL_CHARS + 6,
            ),
            title: svg_label(&full),
            class: match (n.kind, n.column == Column::Versions) {
                ("model", true) => "node model focus",
                ("model", false) => "node model",
                (_, true) => "node dataset focus",
                (_, false) => "node dataset",
            },
        });
    }
    let rows = row.iter().copied().max().unwrap_or(0).max(1);
    let mut edges = Vec::new();
    for e in &g.edges {
        let ((x1, y1), (x2, y2)) = (at[e.from], at[e.to]);
        let (cy1, cy2) = (y1 + NODE_H / 2, y2 + NODE_H / 2);
        let (path, label_x, label_y) = if x1 == x2 {
            // Same column (supersedes): an arc on the left of the column.
            let bend = x1.saturating_sub(36);
            (
                format!("M{x1} {cy1} C{bend} {cy1} {bend} {cy2} {x1} {cy2}"),
                x1.saturating_sub(34),
                (cy1 + cy2) / 2,
            )
        } else {
            let (sx, tx) = if x1 < x2 {
                (x1 + NODE_W, x2)
            } else {
                (x1, x2 + NODE_W)
            };
            let mid = (sx + tx) / 2;
            (
                format!("M{sx} {cy1} C{mid} {cy1} {mid} {cy2} {tx} {cy2}"),
                mid,
                // Above the curve's middle, clear of the line.
                (cy1 + cy2) / 2 - 4,
            )
        };
        edges.push(PlacedEdge {
            path,
            class: if e.relation == "supersedes" {
                "edge supersedes"
            } else {
                "edge"
            },
            label: match &e.role {
                Some(r) => svg_label(r),
                None => e.relation.replace('_', " "),
            },
            label_x,
            label_y,
        });
    }
    let hidden_y = MARGIN + HEADER + rows * (NODE_H + ROW_GAP) + 4;
    let headings = used
        .iter()
        .map(|&c| Heading {
            x: x_of(c),
            text: match (c, g.kind) {
                (Column::BaseModels, _) => "Base models",
                (Column::Versions, "model") => "Releases of this model",
                (Column::Versions, _) => "Versions of this dataset",
                (Column::Related, "model") => "Trained on",
                (Column::Related, _) => "Models trained on it",
            },
            hidden: g.hidden[c as usize],
            hidden_y,
        })
        .collect();
    Layout {
        width: x_of(*used.last().unwrap_or(&Column::Versions)) + NODE_W + MARGIN,
        height: hidden_y + 24,
        nodes,
        edges,
        headings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(index: u64, column: Column, name: &str, version: &str) -> Node {
        Node {
            index: Some(index),
            kind: if column == Column::Related {
                "dataset"
            } else {
                "model"
            },
            name: name.into(),
            version: Some(version.into()),
            column,
        }
    }

    #[test]
    fn columns_are_capped_and_the_rest_counted() {
        let mut g = Graph::new("org/m", "model", 10);
        let v = g.add(n(0, Column::Versions, "org/m", "1")).unwrap();
        for i in 1..=100 {
            let to = g.add(n(i, Column::Related, "org/d", &i.to_string()));
            g.edge(v, to, "trained_on", None);
        }
        assert_eq!(g.column_len(Column::Related), 10);
        assert_eq!(g.hidden, [0, 0, 90]);
        assert!(g.truncated());
        assert_eq!(g.edges.len(), 10);
        // A node already drawn is not added again, nor counted as hidden.
        assert_eq!(g.add(n(1, Column::Related, "org/d", "1")), Some(1));
        assert_eq!(g.hidden, [0, 0, 90]);
        let l = layout(&g);
        assert_eq!(l.nodes.len(), 11);
        assert_eq!(
            l.headings.len(),
            2,
            "the empty base model column takes no room"
        );
        assert_eq!(l.headings[1].hidden, 90);
        // Ten rows tall, whatever the hundred.
        assert!(l.height < 10 * (NODE_H + ROW_GAP) + 200, "{}", l.height);
        assert!(l
            .nodes
            .iter()
            .all(|p| p.y + NODE_H <= l.height && p.x + NODE_W <= l.width));
    }

    #[test]
    fn labels_are_shortened_and_controls_shown() {
        let mut g = Graph::new("org/m", "model", 5);
        let long = "x".repeat(150);
        g.add(n(3, Column::Versions, &format!("org/{long}"), "1\u{202E}0"));
        let l = layout(&g);
        let p = &l.nodes[0];
        assert_eq!(p.line1.chars().count(), LABEL_CHARS);
        assert!(p.line1.ends_with('\u{2026}'));
        assert!(p.line2.contains("U+202E") && !p.line2.contains('\u{202E}'));
        assert!(p.title.contains(&long));
        assert_eq!(p.href.as_deref(), Some("/entry/3"));
    }

    #[test]
    fn supersedes_arcs_stay_in_their_column() {
        let mut g = Graph::new("org/m", "model", 5);
        let a = g.add(n(0, Column::Versions, "org/m", "1")).unwrap();
        let b = g.add(n(1, Column::Versions, "org/m", "2")).unwrap();
        g.edge(b, Some(a), "supersedes", None);
        let l = layout(&g);
        assert_eq!(l.edges[0].class, "edge supersedes");
        assert!(l.edges[0].path.starts_with(&format!("M{} ", l.nodes[1].x)));
    }
}
