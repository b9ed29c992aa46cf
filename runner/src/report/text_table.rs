//! Tables as papers and READMEs show them: one cell model, written as Markdown or as a
//! booktabs LaTeX table (Polars writes CSV and Parquet, but neither of these).

use std::fmt::Write;

/// A table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Text that the LaTeX table prints as written (a label with TeX in it).
    Tex(String),
    Stat(Stat),
    /// A component switched on or off.
    Check(bool),
    /// A setting the variant leaves at the plugin's default.
    Default,
    /// No result.
    Missing,
}

/// A mean over seeds as a results table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// The sample standard deviation (`None` for one seed).
    pub std: Option<f64>,
    /// The difference from the baseline's mean (`None` for the baseline itself).
    pub delta: Option<f64>,
    /// Whether a test finds the difference from the baseline significant.
    pub significant: bool,
    pub rank: Rank,
}

/// Where a mean ranks in its column: the best is bold, the second underlined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    Best,
    Second,
    Other,
}

impl Stat {
    fn markdown(&self) -> String {
        let mean = format!("{:.2}", self.mean);
        let mut s = match self.rank {
            Rank::Best => format!("**{mean}**"),
            Rank::Second => format!("<u>{mean}</u>"),
            Rank::Other => mean,
        };
        if let Some(sd) = self.std {
            write!(s, " ± {sd:.2}").unwrap();
        }
        if let Some(d) = self.delta {
            write!(s, " ({d:+.2}{})", self.marker()).unwrap();
        }
        s
    }

    fn latex(&self) -> String {
        let mean = format!("{:.2}", self.mean);
        let mut s = match self.rank {
            Rank::Best => format!("$\\mathbf{{{mean}}}"),
            Rank::Second => format!("$\\underline{{{mean}}}"),
            Rank::Other => format!("${mean}"),
        };
        // The spread as a subscript, the compact form wide paper tables use.
        if let Some(sd) = self.std {
            write!(s, "_{{\\pm {sd:.2}}}").unwrap();
        }
        s.push('$');
        if let Some(d) = self.delta {
            write!(s, " {{\\scriptsize (${d:+.2}${})}}", self.marker()).unwrap();
        }
        s
    }

    fn marker(&self) -> &'static str {
        if self.significant {
            "*"
        } else {
            ""
        }
    }
}

impl Cell {
    fn markdown(&self) -> String {
        match self {
            Self::Text(t) | Self::Tex(t) => t.replace('|', "\\|"),
            Self::Stat(stat) => stat.markdown(),
            Self::Check(on) => (if *on { "✓" } else { "✗" }).to_string(),
            Self::Default => "default".to_string(),
            Self::Missing => "—".to_string(),
        }
    }

    fn latex(&self) -> String {
        match self {
            Self::Text(t) => latex_escape(t),
            Self::Tex(t) => t.clone(),
            Self::Stat(stat) => stat.latex(),
            Self::Check(true) => "\\checkmark".to_string(),
            Self::Check(false) => "$\\times$".to_string(),
            Self::Default => "\\textit{default}".to_string(),
            Self::Missing => "--".to_string(),
        }
    }
}

/// A captioned table.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTable {
    pub caption: String,
    /// LaTeX label, e.g. `tab:results`.
    pub label: String,
    pub header: Vec<String>,
    /// Column groups over the header's last columns (title, number of columns), left to
    /// right: the datasets of a wide results table. Empty for a plain table.
    pub groups: Vec<(String, usize)>,
    pub rows: Vec<Vec<Cell>>,
}

impl TextTable {
    /// Text columns align left, the others centre.
    fn is_text_column(&self, c: usize) -> bool {
        self.rows
            .iter()
            .all(|r| matches!(r[c], Cell::Text(_) | Cell::Tex(_)))
    }

    /// The columns before the first group.
    fn leading(&self) -> usize {
        self.header.len() - self.groups.iter().map(|g| g.1).sum::<usize>()
    }

    /// The table in GitHub Markdown, without its caption. Markdown has one header row: with
    /// groups, it names the groups and the column names open the body.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let escape = |h: &String| h.replace('|', "\\|");
        let header: Vec<String> = if self.groups.is_empty() {
            self.header.iter().map(escape).collect()
        } else {
            let mut cells = vec![String::new(); self.leading()];
            for (title, span) in &self.groups {
                cells.push(format!("**{}**", escape(title)));
                cells.extend(std::iter::repeat_n(String::new(), span - 1));
            }
            cells
        };
        s += &row(header);
        s += &row((0..self.header.len())
            .map(|c| if self.is_text_column(c) { ":--" } else { ":-:" }.to_string())
            .collect());
        if !self.groups.is_empty() {
            s += &row(self.header.iter().map(escape).collect());
        }
        for r in &self.rows {
            s += &row(r.iter().map(Cell::markdown).collect());
        }
        s
    }

    /// A booktabs `tabular` in a `table` float; with more than one group a `table*`, spanning
    /// both columns of a two-column paper, scaled to the text width. Needs
    /// `\usepackage{booktabs,amssymb}` (and `graphicx` for the scaling).
    pub fn to_latex(&self) -> String {
        let spec: String = (0..self.header.len())
            .map(|c| if self.is_text_column(c) { 'l' } else { 'c' })
            .collect();
        let wide = self.groups.len() > 1;
        let float = if wide { "table*" } else { "table" };
        let line = |cells: Vec<String>| format!("    {} \\\\\n", cells.join(" & "));
        let mut s = String::from(if wide {
            "% Generated by gadms-run report; needs \\usepackage{booktabs,amssymb,graphicx}.\n"
        } else {
            "% Generated by gadms-run report; needs \\usepackage{booktabs,amssymb}.\n"
        });
        writeln!(s, "\\begin{{{float}}}[t]\n  \\centering").unwrap();
        writeln!(s, "  \\caption{{{}}}", latex_escape(&self.caption)).unwrap();
        writeln!(s, "  \\label{{{}}}", self.label).unwrap();
        if wide {
            s += "  \\resizebox{\\textwidth}{!}{%\n";
        }
        writeln!(s, "  \\begin{{tabular}}{{{spec}}}").unwrap();
        s += "    \\toprule\n";
        s += &self.latex_groups();
        s += &line(self.header.iter().map(|h| latex_escape(h)).collect());
        s += "    \\midrule\n";
        for r in &self.rows {
            s += &line(r.iter().map(Cell::latex).collect());
        }
        s += "    \\bottomrule\n  \\end{tabular}\n";
        if wide {
            s += "  }\n";
        }
        writeln!(s, "\\end{{{float}}}").unwrap();
        s
    }

    /// The group row (`\multicolumn` titles, `\cmidrule` under each), or nothing.
    fn latex_groups(&self) -> String {
        if self.groups.is_empty() {
            return String::new();
        }
        let mut titles = vec![String::new(); self.leading()];
        let mut rules = Vec::new();
        let mut first = self.leading() + 1;
        for (title, span) in &self.groups {
            titles.push(format!("\\multicolumn{{{span}}}{{c}}{{{}}}", latex_escape(title)));
            rules.push(format!("\\cmidrule(lr){{{first}-{}}}", first + span - 1));
            first += span;
        }
        format!("    {} \\\\\n    {}\n", titles.join(" & "), rules.join(" "))
    }
}

/// Escapes LaTeX's special characters in text; `±`, `Δ` and `·` become math, and Markdown's
/// `code` spans become `\texttt{code}`.
pub fn latex_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                s += if in_code { "}" } else { "\\texttt{" };
                in_code = !in_code;
            }
            '\\' => s += "\\textbackslash{}",
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                s.push('\\');
                s.push(c);
            }
            '~' => s += "\\textasciitilde{}",
            '^' => s += "\\textasciicircum{}",
            '±' => s += "$\\pm$",
            '<' => s += "$<$",
            '>' => s += "$>$",
            'Δ' => s += "$\\Delta$",
            '·' => s += "$\\cdot$",
            _ => s.push(c),
        }
    }
    if in_code {
        s.push('}');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mean: f64, std: Option<f64>, delta: Option<f64>, significant: bool, rank: Rank) -> Cell {
        Cell::Stat(Stat {
            mean,
            std,
            delta,
            significant,
            rank,
        })
    }

    fn table() -> TextTable {
        TextTable {
            caption: "R@1 in % of run_a & 50% noise, p < 0.05".into(),
            label: "tab:x".into(),
            header: vec!["Variant".into(), "R@1".into(), "MTP".into()],
            groups: Vec::new(),
            rows: vec![
                vec![
                    Cell::Text("no_mask | plain".into()),
                    stat(12.345, Some(0.5), None, false, Rank::Second),
                    Cell::Check(false),
                ],
                vec![
                    Cell::Tex("GA-DMS$^\\dagger$".into()),
                    stat(14.0, None, Some(1.655), true, Rank::Best),
                    Cell::Default,
                ],
            ],
        }
    }

    #[test]
    fn markdown_shows_mean_std_delta_and_ranks_and_escapes_pipes() {
        assert_eq!(
            table().to_markdown(),
            "| Variant | R@1 | MTP |\n| :-- | :-: | :-: |\n\
             | no_mask \\| plain | <u>12.35</u> ± 0.50 | ✗ |\n\
             | GA-DMS$^\\dagger$ | **14.00** (+1.66*) | default |\n"
        );
    }

    #[test]
    fn latex_is_booktabs_with_escaped_text_and_tex_labels_as_written() {
        let tex = table().to_latex();
        assert!(
            tex.contains("\\caption{R@1 in \\% of run\\_a \\& 50\\% noise, p $<$ 0.05}"),
            "{tex}"
        );
        assert!(tex.contains("\\begin{tabular}{lcc}"), "{tex}");
        assert!(
            tex.contains("no\\_mask | plain & $\\underline{12.35}_{\\pm 0.50}$ & $\\times$ \\\\"),
            "{tex}"
        );
        assert!(
            tex.contains(
                "GA-DMS$^\\dagger$ & $\\mathbf{14.00}$ {\\scriptsize ($+1.66$*)} & \\textit{default} \\\\"
            ),
            "{tex}"
        );
        for env in ["table", "tabular"] {
            assert_eq!(
                tex.matches(&format!("\\begin{{{env}}}")).count(),
                tex.matches(&format!("\\end{{{env}}}")).count()
            );
        }
    }

    #[test]
    fn groups_head_their_columns() {
        let table = TextTable {
            caption: "c".into(),
            label: "tab:g".into(),
            header: ["Method", "R@1", "mAP", "R@1", "mAP"].map(String::from).to_vec(),
            groups: vec![("CUHK-PEDES".into(), 2), ("RSTP_Reid".into(), 2)],
            rows: vec![vec![
                Cell::Text("a".into()),
                Cell::Missing,
                Cell::Missing,
                Cell::Missing,
                Cell::Missing,
            ]],
        };
        assert_eq!(
            table.to_markdown(),
            "|  | **CUHK-PEDES** |  | **RSTP_Reid** |  |\n| :-- | :-: | :-: | :-: | :-: |\n\
             | Method | R@1 | mAP | R@1 | mAP |\n| a | — | — | — | — |\n"
        );
        let tex = table.to_latex();
        assert!(
            tex.contains(
                "     & \\multicolumn{2}{c}{CUHK-PEDES} & \\multicolumn{2}{c}{RSTP\\_Reid} \\\\\n    \
                 \\cmidrule(lr){2-3} \\cmidrule(lr){4-5}\n    Method & R@1 & mAP & R@1 & mAP \\\\\n"
            ),
            "{tex}"
        );
        assert!(
            tex.starts_with("%") && tex.contains("\\begin{table*}[t]") && tex.ends_with("\\end{table*}\n")
        );
    }
}
