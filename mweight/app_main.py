"""The Streamlit app (``mweight app``): thin pages over :mod:`mweight.appdata`.

Run with ``mweight app [RUNS_DIR]`` or ``streamlit run apps/mweight_app.py -- RUNS_DIR``.
The runs folder comes from the command line (or ``$MWEIGHT_APP_RUNS_DIR``) only; the
page and the run are chosen in the sidebar and mirrored in the URL
(``?page=segments&run=dna/seed-group``), and a ``run`` that is not one of the runs
discovered inside the runs folder is refused.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from mweight import appdata as A
from mweight.analysis import rank_agreement
from mweight.errors import MWeightError

PAGES = {
    "overview": "Overview",
    "dynamics": "Training dynamics",
    "segments": "Segment explorer",
    "compare": "Compare runs",
    "faithfulness": "Faithfulness",
    "path": "Relevance path",
    "playground": "Synthetic playground",
}
RUN_PAGES = ("overview", "dynamics", "segments", "faithfulness", "path")
PALETTE = px.colors.qualitative.Safe


def _runs_dir_arg() -> str | None:
    """``streamlit run app.py -- RUNS_DIR``: the first argument after the script."""
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if Path(sys.argv[0]).name in ("app_main.py", "mweight_app.py") and args:
        return args[0]
    return None


# ---------------------------------------------------------------- cached loads
@st.cache_data(show_spinner="Loading run…", max_entries=64)
def _load(root: str, entry: A.RunEntry, stamp: tuple) -> A.RunGroup:
    return A.load_group(Path(root), entry)


@st.cache_data(show_spinner=False, max_entries=32)
def _segments(root: str, entry: A.RunEntry, seed, stamp: tuple) -> object:
    group = A.load_group(Path(root), entry)
    return A.segments_frame(group, seed, A.load_transcripts(Path(root), group))


@st.cache_data(show_spinner="Comparing Shapley values with the human unimodal labels…", max_entries=32)
def _unimodal(root: str, entry: A.RunEntry, stamp: tuple) -> object:
    return A.unimodal_table(Path(root), A.load_group(Path(root), entry))


def load(root: Path, entry: A.RunEntry) -> A.RunGroup | None:
    """The run group, or None after showing why it cannot be read."""
    try:
        group = _load(str(root), entry, A.folder_stamp(root, entry))
    except MWeightError as exc:
        st.error(f"This run cannot be shown: {A.md(exc)}")
        return None
    for w in group.warnings:
        st.warning(A.md(w))
    return group


# ---------------------------------------------------------------- tables and charts
GREY = "#b8b8b8"
BETA_NAME = "β share (learned weight)"
CONTRIB_NAME = "contribution share (attribution)"
VERDICT_BOX = {"ok": "success", "weak": "warning", "no-evidence": "error"}


def show_table(df, name: str, key: str, static: bool = False, index: bool = False) -> None:
    """A table with a button that downloads it as CSV (``name``.csv)."""
    if static:
        st.table(df)
    else:
        st.dataframe(df, hide_index=not index, width="stretch")
    st.download_button("Download CSV", df.to_csv(index=index).encode("utf-8"), file_name=f"{A._slug(name)}.csv",
                       mime="text/csv", key=f"dl_{key}")


def _err(mean, lo, hi):
    """Asymmetric error bars from an interval (None where the interval is unknown)."""
    plus = [h - m if h == h else 0.0 for m, h in zip(mean, hi)]
    minus = [m - lo_ if lo_ == lo_ else 0.0 for m, lo_ in zip(mean, lo)]
    visible = any(h == h for h in hi)
    return dict(type="data", symmetric=False, array=plus, arrayminus=minus, visible=visible)


def block_chart(group: A.RunGroup, title: str, greyed: bool = False):
    """Per block: β share (when the model has β) next to the contribution share (when the
    run has attribution.json), each with its interval, both labelled."""
    fig = go.Figure()
    multi = len(group.runs) > 1
    if group.has_beta:
        t = A.share_table(group)
        fig.add_trace(go.Bar(
            name=BETA_NAME, x=t["block"], y=t["share_mean"],
            error_y=dict(type="data", array=t["share_std"], visible=multi),
            marker_color=GREY if greyed else PALETTE[0],
            customdata=t[["share_std", "beta_mean", "n_seeds"]].to_numpy(),
            hovertemplate="<b>%{x}</b><br>β share %{y:.3f} ± %{customdata[0]:.3f}<br>"
                          "raw β %{customdata[1]:.3f}<br>seeds %{customdata[2]}<extra></extra>",
            text=[f"{v:.0%}" for v in t["share_mean"]], textposition="outside"))
    top = 0.1
    if group.has_attribution:
        at = A.attribution_table(group)
        fig.add_trace(go.Bar(
            name=CONTRIB_NAME, x=at["block"], y=at["contribution_share"],
            error_y=_err(at["contribution_share"], at["lo"], at["hi"]),
            marker_color="#d0d0d0" if greyed else PALETTE[2],
            customdata=at[["lo", "hi"]].to_numpy(),
            hovertemplate="<b>%{x}</b><br>contribution share %{y:.3f}<br>interval [%{customdata[0]:.3f}, "
                          "%{customdata[1]:.3f}]<extra></extra>",
            text=[f"{v:.0%}" for v in at["contribution_share"]], textposition="outside"))
        top = max(top, float(at["hi"].max()) if at["hi"].notna().any() else 0.0)
    for tr in fig.data:
        top = max(top, max(tr.y) if len(tr.y) else 0.0)
    fig.update_layout(title=title, yaxis_title="share (sums to 1)", xaxis_title="block", barmode="group",
                      height=400, margin=dict(t=60, b=40), yaxis_range=[0, min(1.12, top * 1.25 + 0.02)],
                      legend=dict(orientation="h", y=-0.2))
    return fig


def modality_chart(group: A.RunGroup, title: str, greyed: bool = False):
    mt = A.modality_attribution_table(group)
    fig = go.Figure(go.Bar(
        name="Shapley share", x=mt["modality"], y=mt["shapley_share"],
        error_y=_err(mt["shapley_share"], mt["lo"], mt["hi"]), marker_color=GREY if greyed else PALETTE[3],
        text=[f"{v:.0%}" for v in mt["shapley_share"]], textposition="outside",
        customdata=mt[["lo", "hi", "mean_abs_shapley"]].to_numpy(),
        hovertemplate="<b>%{x}</b><br>Shapley share %{y:.3f}<br>interval [%{customdata[0]:.3f}, "
                      "%{customdata[1]:.3f}]<br>mean |φ| %{customdata[2]:.4f}<extra></extra>"))
    top = max([0.1] + [v for v in mt["hi"].tolist() + mt["shapley_share"].tolist() if v == v])
    fig.update_layout(title=title, yaxis_title="Shapley share (sums to 1)", xaxis_title="modality", height=400,
                      margin=dict(t=60, b=40), yaxis_range=[0, min(1.12, top * 1.25 + 0.02)])
    return fig


def waterfall_chart(wf, title: str):
    fig = go.Figure(go.Waterfall(
        x=wf["step"], y=wf["value"], measure=wf["measure"],
        text=[f"{v:+.3f}" if m == "relative" else f"{v:.3f}" for v, m in zip(wf["value"], wf["measure"])],
        textposition="outside", connector={"line": {"color": "#999"}},
        hovertemplate="<b>%{x}</b><br>%{y:.4f}<extra></extra>"))
    fig.update_layout(title=title, height=400, margin=dict(t=50, b=40), yaxis_title="contribution")
    return fig


def show_verdict(group: A.RunGroup) -> dict | None:
    """The evidence verdict as a coloured box with its reasons (None: the run has none)."""
    t = A.trust(group)
    if t is None:
        if group.has_attribution:
            st.caption("No evidence verdict in attribution.json (`trust` is missing).")
        return None
    reasons = "; ".join(A.md(r) for r in t["reasons"]) or ("" if t["verdict"] == "ok" else "no reason given")
    text = {"ok": f"**Evidence: ok.** {reasons}",
            "weak": f"**Evidence: weak.** {reasons}. Read the numbers below with care.",
            "no-evidence": f"**No evidence: the numbers below carry no information.** {reasons}. "
                           "The charts are greyed out."}[t["verdict"]]
    getattr(st, VERDICT_BOX[t["verdict"]])(text)
    if len(t.get("per_seed") or []) > 1:
        with st.expander("Verdict per seed"):
            show_table(pd.DataFrame([{"seed": p["seed"], "verdict": p["verdict"], "reasons": "; ".join(p["reasons"])}
                                       for p in t["per_seed"]]), f"{group.name}-verdicts", "verdicts")
    return t


# ---------------------------------------------------------------- demo offer
def _progress_cb(bar, total: int, what: str = "training"):
    def cb(row: dict) -> None:
        e = int(row.get("epoch", 0))
        metric = next((k for k in ("valid_acc", "valid_mae") if k in row), None)
        extra = f" · {metric[6:]} {row[metric]:.3f}" if metric else ""
        bar.progress(min(1.0, e / max(total, 1)), text=f"{what}: epoch {e}/{total}{extra}")
    return cb


def demo_offer(root: Path) -> None:
    st.info(f"No runs found in `{root}`. Train one with `mweight train ... --out {root}/NAME`, "
            "or train a quick demo here.")
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Quick demo on synthetic DNA")
        d = A.DEMO
        st.caption(f"{len(d['p'])} modalities with motif probabilities "
                   f"{' / '.join(f'{v:g}' for v in d['p'])} (the last is irrelevant); {d['n']} sequences, "
                   f"{d['epochs']} epochs. {d['timing']}")
        if st.button("Train a quick demo", key="demo_dna"):
            bar = st.progress(0.0, text="generating data")
            try:
                res = A.train_synthetic(root, "additive", d["p"], n=d["n"], epochs=d["epochs"], folder="demo",
                                        on_epoch=_progress_cb(bar, d["epochs"]))
            except MWeightError as exc:
                st.error(A.md(exc))
            else:
                bar.progress(1.0, text="done")
                st.success(f"Trained `{res['rel']}`.")
                st.query_params["run"] = res["rel"]
                st.rerun()
    with c2:
        st.subheader("On a prepared dataset")
        files = A.dataset_files(root)
        st.caption("Datasets (`.npz`, see docs/DATASET_FORMAT.md) placed inside the runs folder are listed here.")
        if files:
            rel = st.selectbox("Dataset", files, key="demo_file")
            from mweight.config import list_presets

            preset = st.selectbox("Preset", ["(none)"] + list_presets(), key="demo_preset")
            epochs = st.slider("Epochs", 1, 60, 10, key="demo_epochs")
            if st.button("Train on this dataset", key="demo_train_file"):
                bar = st.progress(0.0, text="loading")
                try:
                    res = A.train_on_file(root, rel, None if preset == "(none)" else preset, epochs,
                                          on_epoch=_progress_cb(bar, epochs))
                except MWeightError as exc:
                    st.error(str(exc))
                else:
                    st.query_params["run"] = res["rel"]
                    st.rerun()
        else:
            st.write("No `.npz` file in the runs folder.")


# ---------------------------------------------------------------- pages
def show_reading(group: A.RunGroup, greyed: bool = False) -> None:
    r = A.group_reading(group)
    if r["confident"] or r["verdict"] == "weak":
        st.markdown(f"**Reading.** {A.md(r['text'])}")
    else:
        st.markdown(f"**No confident reading.** {A.md(r['text'])}")


def page_overview(root: Path, group: A.RunGroup) -> None:
    st.title(f"Overview · {A.md(group.name)}")
    n = len(group.runs)
    meta = group.runs[0].meta or {}
    st.caption(f"dataset: {A.md(meta.get('dataset') or '?')} · task: {group.task} · {group.seed_label} · "
               f"blocks: {', '.join(A.md(b) for b in group.blocks)}")
    t = show_verdict(group)
    greyed = bool(t and t["verdict"] == "no-evidence")
    show_reading(group, greyed)
    head = A.headline_metrics(group, 4)
    if not head.empty:
        cols = st.columns(len(head))
        for col, (_, r) in zip(cols, head.iterrows()):
            val = f"{r['mean']:.3f}" + (f" ± {r['std']:.3f}" if r["n"] > 1 else "")
            col.metric(f"{r['split']} {r['metric']}", val, help=f"{r['label']}; {r['better']} is better")
    left, right = st.columns([3, 2])
    with left:
        seeds_note = f", mean over {n} seeds" if n > 1 else ""
        if group.has_attribution or group.has_beta:
            what = " and ".join(w for w, ok in (("β share", group.has_beta),
                                                ("contribution share", group.has_attribution)) if ok)
            title = f"Blocks: {what}{seeds_note}" + (" (no evidence: not informative)" if greyed else "")
            st.plotly_chart(block_chart(group, title, greyed), width="stretch")
        if group.has_attribution:
            interval = "error bars: " + "; ".join(dict.fromkeys(A.attribution_table(group)["interval"]))
            st.caption(f"Contribution share: each block's share of the variance of its contribution "
                       f"$W_S\\,z_S(x)$ over the {A.md(A.attribution_context(group))}; {interval}. "
                       + ("β share: the learned relevance weight β normalised to sum 1 (a weight, not a "
                          "measured contribution)" + ("; its error bars: ± std over seeds." if n > 1 else ".")
                          if group.has_beta else ""))
        elif group.has_beta:
            st.info("No attribution.json in this run (written by an older mweight): only β share is shown. "
                    "β is the learned weight, not a measured contribution; train the run again to see the "
                    "contribution share and Shapley values next to it.")
        if not group.has_beta:
            st.info(f"This model has no β (model.relevance: none{', late fusion' if 'late' in str(meta.get('preset')) else ''}): "
                    "no β share is shown" + ("" if group.has_attribution else ", and without attribution.json "
                                             "there is no relevance to show") + ".")
        if group.has_beta:
            st.markdown(f"**p = {group.p:g}** (raw β have unit {group.p:g}-norm; β shares are β normalised to "
                        f"sum 1) · **block normalisation: {A.md(group.norm)}** · **β: {A.md(group.relevance_mode)}**")
        else:
            st.markdown(f"**block normalisation: {A.md(group.norm)}** · **β: none**")
    with right:
        st.subheader("Metrics (convention labelled)")
        mt = A.metrics_table(group, ("test",))
        if mt.empty:
            mt = A.metrics_table(group, ("valid",))
        shown = mt.assign(value=[f"{m:.4f}" + (f" ± {s:.4f}" if k > 1 else "")
                                 for m, s, k in zip(mt["mean"], mt["std"], mt["n"])],
                          label=[f"{lab} ({b} is better)" for lab, b in zip(mt["label"], mt["better"])])
        show_table(shown[["split", "label", "value"]].rename(columns={"label": "metric (convention)"})
                   .set_index("split"), f"{group.name}-metrics", "ov_metrics", static=True, index=True)
    if group.has_attribution and not A.modality_attribution_table(group).empty:
        c1, c2 = st.columns([3, 2])
        with c1:
            st.plotly_chart(modality_chart(group, f"Modalities: Shapley share{seeds_note}"
                                           + (" (no evidence: not informative)" if greyed else ""), greyed),
                            width="stretch")
        with c2:
            st.markdown("**Shapley share** per modality: mean $|\\varphi_m(x)|$ normalised to sum 1, where "
                        "$\\varphi_m(x) = \\sum_{S \\ni m} (g_S(x) - \\mathbb{E}_{train}\\, g_S) / |S|$ splits "
                        "every block's contribution $g_S(x) = W_S\\,z_S(x)$ equally among its modalities.")
            defs = A.definitions(group)
            if defs:
                with st.expander("Definitions (from attribution.json)"):
                    for k, v in defs.items():
                        st.markdown(f"**{A.md(k)}**: {A.md(v)}")
    with st.expander("The numbers: β, attribution and validation metrics"):
        show_table(A.metrics_table(group, ("valid",)), f"{group.name}-valid-metrics", "ov_valid")
        table = A.share_table(group)
        if group.has_beta:
            show_table(table.rename(columns={"share_mean": "β share", "share_std": "± std",
                                             "beta_mean": "raw β", "beta_std": "raw β ± std"}),
                       f"{group.name}-beta", "ov_beta")
        if group.has_attribution:
            show_table(A.attribution_table(group), f"{group.name}-attribution-blocks", "ov_attr")
            mt2 = A.modality_attribution_table(group)
            if not mt2.empty:
                show_table(mt2, f"{group.name}-attribution-modalities", "ov_attr_mod")
    truth = A.truth_for(root, group)
    if truth:
        st.subheader("Against the synthetic ground truth")
        st.caption(A.md(truth.get("expected_share_note", "")))
        show_table(A.recovered_vs_truth(group, truth), f"{group.name}-truth", "ov_truth")
    show_unimodal(root, group)


def show_unimodal(root: Path, group: A.RunGroup) -> None:
    """Shapley values against the human unimodal labels, when the run's dataset has them (CH-SIMS)."""
    try:
        table = _unimodal(str(root), group.entry, A.folder_stamp(root, group.entry))
    except MWeightError as exc:
        st.warning(f"Shapley values against the human unimodal labels cannot be shown: {A.md(exc)}")
        return
    if table.empty:
        return
    st.subheader("Against the human unimodal labels")
    st.caption(A.md(A.UNIMODAL_NOTE) + " Per modality m: the Pearson correlation of its Shapley value with the "
               "annotators' label of m alone and with the multimodal label, on the samples of the split shown; "
               "a positive difference (95% bootstrap interval over samples) means the credit to m follows "
               "what annotators saw in m more than the overall sentiment.")
    show_table(table, f"{group.name}-unimodal-labels", "ov_unimodal")


def _colour_map(names) -> dict:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def page_dynamics(root: Path, group: A.RunGroup) -> None:
    from plotly.subplots import make_subplots

    st.title(f"Training dynamics · {A.md(group.name)}")
    if not group.has_beta:
        st.info("This model has no β (model.relevance: none): its per-epoch β is not part of the model.")
    what = st.radio("Relevance shown", ["share", "beta"], horizontal=True,
                    format_func={"share": "β share (sums to 1)", "beta": "raw β"}.get, key="dyn_what")
    hist = A.history_long(group, what)
    if hist.empty:
        st.warning("This run has no per-epoch history (history.csv).")
        return
    seeds = list(dict.fromkeys(hist["seed"]))
    best = {A._seed_name(group, s): int(r.metrics.get("info", {}).get("best_epoch") or 0)
            for s, r in zip(group.seeds, group.runs)}
    colours = _colour_map(group.blocks)
    ncol = min(3, len(seeds))
    nrow = -(-len(seeds) // ncol)
    label = "β share" if what == "share" else "raw β"
    # small multiples: one panel per seed, one colour per block (the legend lists blocks only)
    fig = make_subplots(rows=nrow, cols=ncol, shared_yaxes=True, subplot_titles=[f"seed {s}" for s in seeds],
                        horizontal_spacing=0.04, vertical_spacing=0.12)
    for i, s in enumerate(seeds):
        r, c = i // ncol + 1, i % ncol + 1
        sub = hist[hist["seed"] == s]
        for b in group.blocks:
            d = sub[sub["block"] == b]
            fig.add_trace(go.Scatter(x=d["epoch"], y=d["value"], mode="lines+markers", name=b, legendgroup=b,
                                     showlegend=i == 0, line=dict(color=colours[b]), meta={"seed": s, "block": b},
                                     hovertemplate=f"<b>{b}</b> · seed {s}<br>epoch %{{x}}<br>{label} %{{y:.4f}}"
                                                   "<extra></extra>"), row=r, col=c)
        if best.get(s):
            fig.add_vline(x=best[s], line_dash="dot", line_color="#666", row=r, col=c,
                          annotation_text=f"selected: epoch {best[s]} (seed {s})", annotation_position="top left",
                          annotation_font_size=11)
    fig.update_layout(title=f"{label} per block over epochs (one panel per seed)", height=320 * nrow + 60,
                      legend_title_text="block")
    fig.update_xaxes(title_text="epoch")
    st.plotly_chart(fig, width="stretch")
    vm = A.valid_metric_long(group)
    if vm.empty:
        st.info("No validation metrics in the history.")
        return
    metrics = list(dict.fromkeys(vm["metric"]))
    metric = st.selectbox("Validation metric", metrics, format_func=A.metric_label, key="dyn_metric")
    sub = vm[vm["metric"] == metric]
    scol = _colour_map(seeds)
    fig2 = go.Figure()
    for s in seeds:
        d = sub[sub["seed"] == s]
        fig2.add_trace(go.Scatter(x=d["epoch"], y=d["value"], mode="lines+markers", name=f"seed {s}",
                                  line=dict(color=scol[s]), meta={"seed": s}))
        b = best.get(s)
        if b and (d["epoch"] == b).any():
            y = float(d.loc[d["epoch"] == b, "value"].iloc[0])
            fig2.add_trace(go.Scatter(x=[b], y=[y], mode="markers", marker=dict(symbol="star", size=14,
                                      color=scol[s], line=dict(color="#333", width=1)),
                                      hovertemplate=f"seed {s}: selected epoch {b}<extra></extra>",
                                      name=f"seed {s}: selected epoch {b}", meta={"seed": s, "selected": b}))
    fig2.update_layout(title=f"validation {A.metric_label(metric)}", height=360, xaxis_title="epoch",
                       yaxis_title=A.metric_label(metric))
    st.plotly_chart(fig2, width="stretch")
    st.caption("Dotted lines and stars: the epoch selected on the validation split for each seed (its "
               "checkpoint gives β, the attribution and the metrics).")


def page_segments(root: Path, group: A.RunGroup) -> None:
    st.title(f"Segment explorer · {A.md(group.name)}")
    c0, c1, c2, c3, c4 = st.columns([1, 1, 2, 2, 2])
    seed = group.seeds[0]
    if len(group.seeds) > 1:
        seed = c0.selectbox("Seed", group.seeds, key="seg_seed")
    try:
        df = _segments(str(root), group.entry, seed, A.folder_stamp(root, group.entry))
    except MWeightError as exc:
        st.error(f"Segments cannot be shown: {A.md(exc)}")
        return
    splits = ["all"] + [s for s in ("train", "valid", "test") if s in set(df.get("split", []))]
    split = c1.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0, key="seg_split")
    query = c2.text_input("Search id or transcript", key="seg_query")
    by = c3.selectbox("Sort by", A.SORTS, key="seg_sort")
    block = c4.selectbox("Block", group.blocks, key="seg_block")
    decided = False
    if group.task == "regression":
        decided = st.checkbox(f"only segments where {A.md(block)} decided the outcome (removing it flips the sign)",
                              key="seg_decided")
    mods = A.shapley_columns(df)
    view = A.sort_segments(df, by, block, group.task, split, query, decided)
    st.caption(f"{len(view)} of {len(df)} segments")
    if view.empty:
        st.info("No segment matches.")
        return
    cols = ["id", "split", "label", "prediction"] + (["error"] if "error" in view else ["correct"]) + group.blocks
    cols += [f"shapley_{m}" for m in mods]
    if "transcript" in view:
        cols.append("transcript")
    ids = view["id"].astype(str).head(500).tolist()
    # A new filter or sort order selects its first segment (otherwise the old pick would stay).
    signature = (seed, split, query, by, block, decided)
    if st.session_state.get("_seg_signature") != signature or st.session_state.get("seg_pick") not in ids:
        st.session_state["seg_pick"] = ids[0]
    st.session_state["_seg_signature"] = signature
    left, right = st.columns([2, 3])
    with left:
        pick = st.selectbox("Segment", ids, key="seg_pick")
        st.dataframe(view[cols].head(200), hide_index=True, width="stretch", height=480)
        st.download_button("Download CSV", view[cols].to_csv(index=False).encode("utf-8"),
                           file_name=f"{A._slug(group.name)}-segments.csv", mime="text/csv", key="dl_segments")
    row = view[view["id"].astype(str) == pick].iloc[0]
    with right:
        st.subheader(f"Segment {A.md(pick)}")
        if str(row.get("transcript", "") or ""):
            st.markdown(f"> {A.md(row['transcript'])}")
        m1, m2, m3 = st.columns(3)
        m1.metric("true label", f"{row['label']:.3g}")
        m2.metric("prediction", f"{row['prediction']:.3f}" if group.task == "regression"
                  else f"class {int(row['prediction'])}")
        if group.task == "regression":
            m3.metric("error (prediction − label)", f"{row['error']:+.3f}")
        else:
            m3.metric("correct", "yes" if bool(row["correct"]) else "no")
        what = "prediction" if group.task == "regression" else "predicted class's logit"
        views = ["blocks"] + (["shapley"] if mods else [])
        by_what = st.radio("Decompose by", views, horizontal=True, key="seg_decomp",
                           format_func={"blocks": "blocks: W_S z_S(x)", "shapley": "modalities: Shapley φ_m(x)"}.get)
        if by_what == "shapley":
            wf = A.shapley_waterfall(row, mods, group.task)
            st.plotly_chart(waterfall_chart(wf, f"From the baseline to the {what}: each modality's Shapley value"),
                            width="stretch")
            st.markdown(f"Baseline: every block at its training-mean contribution; "
                        f"$\\varphi_m(x) = \\sum_{{S \\ni m}} (g_S(x) - \\mathbb{{E}}_{{train}}\\, g_S)/|S|$. "
                        f"Exact: baseline + $\\sum_m \\varphi_m(x)$ = the {what}.")
        else:
            wf = A.waterfall(row, group.blocks, group.task)
            st.plotly_chart(waterfall_chart(wf, f"From the bias to the {what}: each block's contribution"),
                            width="stretch")
            st.markdown(f"Each bar is one block's contribution $W_S\\,z_S(x)$. The decomposition is exact: "
                        f"bias + $\\sum_S W_S\\,z_S(x)$ = the {what}."
                        + ("" if mods else " (This run has no per-sample Shapley values: predictions.csv "
                                           "without `shapley_<modality>` columns, written by an older mweight.)"))


def page_compare(root: Path, entries: list[A.RunEntry]) -> None:
    st.title("Compare runs")
    ok = [e for e in entries if e.kind != "broken"]
    if len(ok) < 2:
        st.info("Comparing needs at least two runs in the runs folder.")
        if not ok:
            return
    labels = {e.rel: e.label for e in ok}
    if "cmp_runs" not in st.session_state:
        st.session_state["cmp_runs"] = A.comparable_default(root, ok, st.session_state.get("nav_run"))
    chosen = st.multiselect("Runs", list(labels), format_func=labels.get, key="cmp_runs",
                            help="Starts with the sidebar's run and the runs on the same data (same task, "
                                 "modalities and dataset).")
    groups = [g for g in (load(root, A.find_entry(ok, rel)) for rel in chosen) if g is not None]
    if not groups:
        return
    keys = {A.comparability_key(root, g.entry) for g in groups}
    if len(keys) > 1:
        st.warning("These runs are not on the same data (task, modalities or dataset differ): their numbers "
                   "are not directly comparable.")
    shares, metrics, config = A.compare_frames(groups)
    shares.loc[shares["n_seeds"] <= 1, "share_std"] = float("nan")  # no error bar for a single seed
    beta = shares[shares["has_beta"]]
    if not beta.empty:
        fig = px.bar(beta, x="block", y="share_mean", color="run", barmode="group", error_y="share_std",
                     color_discrete_sequence=PALETTE, labels={"share_mean": "β share (sums to 1)"},
                     hover_data={"beta_mean": ":.3f", "n_seeds": True},
                     title="β share per block (learned weight; mean ± std over seeds)")
        fig.update_layout(height=380)
        st.plotly_chart(fig, width="stretch")
    if len(beta) < len(shares):
        st.caption("Runs without β (model.relevance: none): " + ", ".join(
            A.md(r) for r in dict.fromkeys(shares.loc[~shares["has_beta"], "run"])) + ".")
    contrib = shares[shares["contribution_share"].notna()]
    if not contrib.empty:
        fig = px.bar(contrib, x="block", y="contribution_share", color="run", barmode="group",
                     error_y=contrib["contribution_share_std"].where(contrib["n_seeds"] > 1),
                     color_discrete_sequence=PALETTE, labels={"contribution_share": "contribution share (sums to 1)"},
                     title="Contribution share per block (attribution; mean ± std over seeds)")
        fig.update_layout(height=380)
        st.plotly_chart(fig, width="stretch")
    else:
        st.caption("None of these runs has attribution.json: only β share can be compared.")
    st.subheader("Test metrics")
    show_table(metrics, "compare-metrics", "cmp_metrics", static=True, index=True)
    st.subheader("How the runs differ (config)")
    if config.empty:
        st.write("Same config (apart from seeds).")
    else:
        show_table(config, "compare-config", "cmp_config", static=True, index=True)
    show_table(shares, "compare-shares", "cmp_shares")
    for g in groups:
        st.markdown(f"**{A.md(g.name)}**: {A.md(A.group_reading(g)['text'])}")


def page_faithfulness(root: Path, group: A.RunGroup) -> None:
    st.title(f"Faithfulness · {A.md(group.name)}")
    st.markdown("Do β and the attribution agree with what the model actually uses? Next to them, two "
                "measurements: **block ablation** removes one block's contribution from every prediction "
                "(exact, the prediction is additive over blocks); **modality permutation** shuffles one "
                "modality's inputs across segments, which disturbs every block containing it. Like is compared "
                "with like: one seed's β, attribution and importance all come from that seed's model; "
                "\"mean over seeds\" averages each of them over the seeds.")
    options = list(group.seeds) + (["mean"] if len(group.seeds) > 1 else [])
    seed = group.seeds[0]
    if len(options) > 1:
        seed = st.selectbox("Seed", options, key="faith_seed",
                            format_func=lambda s: f"mean over {len(group.seeds)} seeds" if s == "mean" else f"seed {s}")
    if seed != "mean":
        run = group.run_for(seed)
        saved = A.ablation_results(run.path)
        if saved:
            st.subheader("Saved `mweight ablate` results")
            table = A.saved_ablation_table(saved)
            if table is not None:
                show_table(table, f"{group.name}-saved-ablation", "faith_saved")
            else:
                st.json(saved, expanded=False)
    split = st.selectbox("Split", ["test", "valid"], key="faith_split")
    key = ("faith", group.entry.rel, str(seed), split, A.folder_stamp(root, group.entry))
    if st.button("Measure importance", key="faith_go") or key in st.session_state:
        if key not in st.session_state:
            bar = st.progress(0.0, text="loading the model")
            prog = lambda f, t: bar.progress(min(1.0, f), text=t)  # noqa: E731
            try:
                st.session_state[key] = (A.faithfulness_mean(root, group, split, progress=prog) if seed == "mean"
                                         else A.faithfulness(root, group, seed, split, progress=prog))
            except MWeightError as exc:
                st.error(f"Importance cannot be measured: {A.md(exc)}")
                return
            bar.progress(1.0, text="done")
        res = st.session_state[key]
        which = (f"means over seeds {', '.join(map(str, res['seeds']))} (each measured on its own seed)"
                 if seed == "mean" else f"seed {seed}: β, attribution and importance of the same model")
        st.caption(f"{which}. {res['split']} split, {res['n']} segments; base {res['label']} = {res['base']:.4f}; "
                   f"importance = how much it gets worse, clipped at 0 and normalised to sum 1. "
                   f"Computed by {res['source']}.")
        if res.get("attribution_split") is None:
            st.caption(f"No attribution on the {split} split for this run (attribution.json missing or without "
                       "that split): the contribution and Shapley shares are left out.")
        b = res["blocks"]
        names = {"beta_share": "β share", "contribution_share": "contribution share",
                 "importance_share": "ablation importance"}
        vv = [c for c in names if c in b and b[c].notna().any()]
        long = b.melt(id_vars=["block"], value_vars=vv, var_name="measure")
        long["measure"] = long["measure"].map(names)
        fig = px.bar(long, x="block", y="value", color="measure", barmode="group", color_discrete_sequence=PALETTE,
                     title=f"Blocks: {', '.join(names[c] for c in vv)} ({'mean over seeds' if seed == 'mean' else f'seed {seed}'})",
                     labels={"value": "share"})
        st.plotly_chart(fig, width="stretch")
        mc1, mc2 = st.columns(2)
        if group.has_beta:
            rho = rank_agreement(b["beta_share"], b["degradation"])["spearman"]
            mc1.metric("rank agreement (Spearman) of β share and ablation", "n/a" if rho is None else f"{rho:.2f}")
        if "contribution_share" in b and b["contribution_share"].notna().all():
            rho = rank_agreement(b["contribution_share"], b["degradation"])["spearman"]
            mc2.metric("rank agreement (Spearman) of contribution share and ablation",
                       "n/a" if rho is None else f"{rho:.2f}")
        m = res["modalities"]
        mnames = {"beta_share_all_blocks_with_it": "β share of its blocks", "shapley_share": "Shapley share",
                  "ablation_share": "ablation importance (training mean)", "importance_share": "permutation importance"}
        vv = [c for c in mnames if c in m and m[c].notna().any()]
        longm = m.melt(id_vars=["modality"], value_vars=vv, var_name="measure")
        longm["measure"] = longm["measure"].map(mnames)
        fig2 = px.bar(longm, x="modality", y="value", color="measure", barmode="group",
                      color_discrete_sequence=PALETTE, labels={"value": "share"},
                      title="Modalities: β share of every block containing it, Shapley share and measured importance")
        st.plotly_chart(fig2, width="stretch")
        show_table(b, f"{group.name}-faithfulness-blocks", "faith_blocks")
        show_table(m, f"{group.name}-faithfulness-modalities", "faith_mods")


def page_path(root: Path, group: A.RunGroup) -> None:
    st.title(f"Relevance path · {A.md(group.name)}")
    st.markdown("The same data and configuration trained again at several values of p (only p changes): "
                "β share is squeezed towards uniform as p grows, while the attribution (contribution share, "
                "Shapley share) measures what the model's prediction is made of and should not depend on p. "
                f"Runs are written to `{A.path_folder(group)}/p_*` in the runs folder.")
    if not group.has_beta:
        st.info("This model has no β (model.relevance: none): p changes nothing, there is no path to draw.")
        return
    cfg_epochs = int((group.runs[0].config.get("train") or {}).get("epochs") or 10)
    c1, c2 = st.columns([3, 1])
    ps = c1.multiselect("Values of p", [1.0, 1.5, 2.0, 3.0, 4.0, 8.0, 16.0], default=list(A.DEFAULT_PATH_PS),
                        key="path_ps", format_func=lambda v: f"{v:g}")
    epochs = c2.number_input("Epochs per run", 1, 500, min(cfg_epochs, 500), key="path_epochs")
    st.caption(f"{len(ps)} runs × {int(epochs)} epochs on the run's data (seed {group.seeds[0] if group.seeds[0] is not None else A._seed_name(group, None)}).")
    if st.button("Train the path", key="path_go"):
        bar = st.progress(0.0, text="loading the data")
        try:
            A.train_path(root, group, ps, int(epochs), progress=lambda f, t: bar.progress(min(1.0, f), text=t))
        except MWeightError as exc:
            st.error(A.md(exc))
            return
        bar.progress(1.0, text="done")
    frame = A.path_frame(root, group)
    if frame.empty:
        st.info("No path trained yet for this run: choose the values of p and press **Train the path**.")
        return
    blocks = frame[frame["kind"].isin(["modality", "interaction"]) & (frame["measure"] != "Shapley share")]
    names = [b for b in group.blocks if b in set(blocks["name"])]
    pvals = sorted(set(frame["p"]))
    fig = px.line(blocks, x="p", y="value", color="measure", facet_col="name", facet_col_wrap=4, markers=True,
                  category_orders={"name": names, "measure": ["β share", "contribution share"]},
                  error_y=(blocks["hi"] - blocks["value"]).where(blocks["hi"].notna()),
                  error_y_minus=(blocks["value"] - blocks["lo"]).where(blocks["lo"].notna()),
                  color_discrete_sequence=PALETTE, log_x=True, labels={"value": "share", "name": "block"},
                  title="Per block: β share and contribution share against p")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_xaxes(tickvals=pvals, ticktext=[f"{v:g}" for v in pvals])
    fig.update_layout(height=300 * (-(-len(names) // 4)) + 80)
    st.plotly_chart(fig, width="stretch")
    shap = frame[frame["measure"] == "Shapley share"]
    if not shap.empty:
        fig2 = px.line(shap, x="p", y="value", facet_col="name", facet_col_wrap=4, markers=True, log_x=True,
                       error_y=(shap["hi"] - shap["value"]), error_y_minus=(shap["value"] - shap["lo"]),
                       color_discrete_sequence=[PALETTE[3]], labels={"value": "Shapley share", "name": "modality"},
                       category_orders={"name": group.modalities}, title="Per modality: Shapley share against p")
        fig2.update_xaxes(tickvals=pvals, ticktext=[f"{v:g}" for v in pvals])
        fig2.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
        st.plotly_chart(fig2, width="stretch")
    else:
        st.caption("The path runs have no attribution.json: only β share is drawn.")
    show_table(frame, f"{group.name}-relevance-path", "path_table")


def page_playground(root: Path) -> None:
    st.title("Synthetic playground")
    st.markdown("Generate DNA-like sequences whose ground truth is known, train on them here, and check "
                "that β and the attribution find the relevant modalities (or the XOR interaction).")
    design = st.radio("Design", ["additive", "xor"], horizontal=True, key="pg_design",
                      format_func={"additive": "additive (motif probability p_m per modality)",
                                   "xor": "XOR (label = XOR of m1 and m2; m3 irrelevant)"}.get)
    p = []
    if design == "additive":
        m = st.slider("Modalities", 2, 5, 3, key="pg_m")
        cols = st.columns(m)
        defaults = list(A.DEMO["p"]) + [0.0] * 5
        p = [cols[i].slider(f"p_m{i + 1}", 0.0, 1.0, defaults[i], 0.05, key=f"pg_p{i}") for i in range(m)]
    c1, c2, c3 = st.columns(3)
    n = c1.select_slider("Sequences", [200, 400, 600, 1000, 2000, 4000, 8000], value=A.DEMO["n"], key="pg_n")
    epochs = c2.slider("Epochs", 1, 30, A.DEMO["epochs"], key="pg_epochs")
    seed = int(c3.number_input("Seed", 0, 10_000, 0, key="pg_seed"))
    if design == "additive":
        st.caption("Trained with the dna-additive preset and " + ", ".join(f"`{o}`" for o in A.DEMO["overrides"])
                   + f". The defaults ({A.DEMO['n']} sequences, {A.DEMO['epochs']} epochs) find the irrelevant "
                   "modality on every seed tried; with fewer sequences or epochs the data are too small to tell "
                   "(expect a p = 0 modality above 0.02 and check the evidence verdict).")
    if st.button("Generate and train", key="pg_go"):
        bar = st.progress(0.0, text="generating data")
        try:
            res = A.train_synthetic(root, design, p, n=n, epochs=epochs, seed=seed,
                                    on_epoch=_progress_cb(bar, epochs))
        except MWeightError as exc:
            st.error(A.md(exc))
            return
        bar.progress(1.0, text="done")
        st.session_state["pg_result"] = {"rel": res["rel"], "truth": res["truth"]}
    last = st.session_state.get("pg_result")
    if not last:
        return
    entry = A.find_entry(A.discover_runs(root), last["rel"])
    group = load(root, entry) if entry else None
    if group is None:
        return
    st.success(f"Trained `{A.md(last['rel'])}` (open it on the other pages from the sidebar).")
    t = show_verdict(group)
    table = A.recovered_vs_truth(group, last["truth"])
    long = table.melt(id_vars="block", var_name="what", value_name="share")
    long["what"] = long["what"].map({"recovered": "recovered β share", "contribution share": "contribution share",
                                     "expected": "ground truth"})
    fig = px.bar(long, x="block", y="share", color="what", barmode="group", color_discrete_sequence=PALETTE,
                 title="Recovered β share and contribution share vs ground truth")
    st.plotly_chart(fig, width="stretch")
    st.caption(A.md(last["truth"].get("expected_share_note", "")))
    st.markdown(f"**Reading.** {A.md(A.group_reading(group)['text'])}")
    head = A.headline_metrics(group, 2)
    show_table(head[["split", "label", "mean"]], f"{last['rel']}-metrics", "pg_metrics")
    show_table(table, f"{last['rel']}-truth", "pg_truth")


# ---------------------------------------------------------------- main
def main() -> None:
    st.set_page_config(page_title="mweight", page_icon="⚖️", layout="wide")
    root = A.runs_root(_runs_dir_arg())
    entries = A.discover_runs(root)
    qp = st.query_params

    asked_page = qp.get("page", "overview")
    if asked_page not in PAGES:
        st.warning(f"Unknown page {A.md(repr(asked_page))}; showing the overview.")
        asked_page = "overview"
    if "nav_page" not in st.session_state:
        st.session_state["nav_page"] = asked_page
    st.sidebar.title("mweight")
    st.sidebar.caption(f"runs folder: `{root}`")
    page = st.sidebar.radio("Page", list(PAGES), format_func=PAGES.get, key="nav_page")
    qp["page"] = page

    entry = None
    if entries:
        rels = [e.rel for e in entries]
        asked_run = qp.get("run")
        if asked_run is not None and asked_run not in rels:
            st.warning(f"{A.md(repr(asked_run))} is not a run inside the runs folder; choose one in the sidebar.")
            asked_run = None
        if st.session_state.get("nav_run") not in rels or (asked_run and st.session_state.get("_asked") != asked_run):
            st.session_state["nav_run"] = asked_run or next((e.rel for e in entries if e.kind != "broken"), rels[0])
        st.session_state["_asked"] = asked_run
        if page in RUN_PAGES:
            labels = {e.rel: e.label for e in entries}
            rel = st.sidebar.selectbox("Run", rels, format_func=labels.get, key="nav_run")
            qp["run"] = rel
            st.session_state["_asked"] = rel
            entry = A.find_entry(entries, rel)
        broken = [e for e in entries if e.kind == "broken"]
        if broken:
            with st.sidebar.expander(f"{len(broken)} folder(s) cannot be read"):
                for e in broken:
                    st.caption(f"`{e.rel}`: {e.problem}")

    if page == "playground":
        page_playground(root)
        return
    if page == "compare":
        page_compare(root, entries)
        return
    if not entries:
        st.title(PAGES[page])
        demo_offer(root)
        return
    group = load(root, entry)
    if group is None:
        return
    {"overview": page_overview, "dynamics": page_dynamics, "segments": page_segments,
     "faithfulness": page_faithfulness, "path": page_path}[page](root, group)


if __name__ == "__main__":
    main()
