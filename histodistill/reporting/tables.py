"""The paper's tables: per-method Markdown and LaTeX tables, and the HTML tables of the report."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from .plot_style import ipc_order


def _best_in_columns(summary: pd.DataFrame, ipcs: list[Any], metrics: Sequence[str]) -> set[tuple[str, str, Any, str]]:
    """(method, model, ipc, metric) of the best mean per network, IPC and metric among the selected and distilled
    sets (full real data, the upper bound, is not in the race); ties are all best."""
    best = set()
    for (model, ipc), grp in summary[summary["ipc"] != "all"].groupby(["model", "ipc"], sort=False):
        for metric in metrics:
            vals = grp[f"{metric}_mean"].round(3)
            if vals.notna().any():
                top = vals.max()
                best |= {(m, model, ipc, metric) for m, v in zip(grp["method"], vals) if v == top}
    return best


def method_tables(summary: pd.DataFrame, metrics: Sequence[str] = ("acc", "auc", "f1")) -> tuple[str, str]:
    """The method × IPC table in the paper's layout (per IPC: ACC ± std, AUC, F1, in %) as Markdown and LaTeX
    (booktabs), the best value of each column per network in bold."""
    ipcs = ipc_order(summary["ipc"].astype(str).tolist())
    summary = summary.assign(ipc=summary["ipc"].astype(str))
    best = _best_in_columns(summary, ipcs, metrics)
    names = {"acc": "ACC", "auc": "AUC", "f1": "F1"}
    md = [
        "| method | network | " + " | ".join(f"IPC {i}: {names[m]}" for i in ipcs for m in metrics) + " |",
        "|---|---|" + "---:|" * (len(ipcs) * len(metrics)),
    ]
    tex_cols = "ll" + "r" * (len(ipcs) * len(metrics))
    tex = [
        f"\\begin{{tabular}}{{{tex_cols}}}",
        "\\toprule",
        "& & " + " & ".join(f"\\multicolumn{{{len(metrics)}}}{{c}}{{IPC {i}}}" for i in ipcs) + " \\\\",
        " ".join(f"\\cmidrule(lr){{{3 + k * len(metrics)}-{2 + (k + 1) * len(metrics)}}}" for k in range(len(ipcs))),
        "Method & Network & " + " & ".join(names[m] for _ in ipcs for m in metrics) + " \\\\",
        "\\midrule",
    ]

    def tex_escape(s: str) -> str:
        return s.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")

    for (method, model), grp in summary.groupby(["method", "model"], sort=False):
        md_cells, tex_cells = [], []
        for i in ipcs:
            row = grp[grp["ipc"] == i]
            for m in metrics:
                if row.empty or pd.isna(row.iloc[0][f"{m}_mean"]):
                    md_cells.append("")
                    tex_cells.append("--")
                    continue
                r = row.iloc[0]
                text = f"{100 * r[f'{m}_mean']:.1f}"
                tex_text = text
                if m == "acc":
                    text += f" ± {100 * r[f'{m}_std']:.1f}"
                    tex_text += f" $\\pm$ {100 * r[f'{m}_std']:.1f}"
                bold = (method, model, i, m) in best
                md_cells.append(f"**{text}**" if bold else text)
                tex_cells.append(f"\\textbf{{{tex_text}}}" if bold else tex_text)
        md.append(f"| {method} | {model} | " + " | ".join(md_cells) + " |")
        tex.append(f"{tex_escape(str(method))} & {tex_escape(str(model))} & " + " & ".join(tex_cells) + " \\\\")
    tex += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(md) + "\n", "\n".join(tex) + "\n"


def html_table(markdown: str, title: str) -> str:
    """A Markdown pipe table (bold as **x**) as a small self-contained HTML page, for the snakemake report."""
    import html

    lines = [ln for ln in markdown.strip().splitlines() if ln.startswith("|")]
    if len(lines) < 2:
        body = f"<p>{html.escape(markdown)}</p>"
    else:

        def cells(line: str) -> list[str]:
            return [c.strip() for c in line.strip().strip("|").split("|")]

        def fmt(c: str) -> str:
            c = html.escape(c)
            return f"<b>{c[2:-2]}</b>" if c.startswith("**") and c.endswith("**") and len(c) > 4 else c

        head = "".join(f"<th>{fmt(c)}</th>" for c in cells(lines[0]))
        rows = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in cells(ln)) + "</tr>" for ln in lines[2:])
        body = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    css = (
        "body{font-family:sans-serif;font-size:13px;margin:8px}table{border-collapse:collapse}"
        "th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}"
        "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}th{background:#f2f2f2}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{css}</style></head><body><h3>{html.escape(title)}</h3>{body}</body></html>\n"
    )


def config_html(config: dict[str, Any], title: str) -> str:
    """The run's configuration (schema defaults filled in) as YAML in a small HTML page, for the report."""
    import html

    import yaml

    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=110)
    css = "body{font-family:sans-serif;font-size:13px;margin:8px}pre{font-size:12px;background:#f6f6f6;padding:8px}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{css}</style>"
        f"</head><body><h3>{html.escape(title)}</h3><pre>{html.escape(text)}</pre></body></html>\n"
    )
