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

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from mweight import appdata as A
from mweight.errors import MWeightError

PAGES = {
    "overview": "Overview",
    "dynamics": "Training dynamics",
    "segments": "Segment explorer",
    "compare": "Compare runs",
    "faithfulness": "Faithfulness",
    "playground": "Synthetic playground",
}
RUN_PAGES = ("overview", "dynamics", "segments", "faithfulness")
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


def load(root: Path, entry: A.RunEntry) -> A.RunGroup | None:
    """The run group, or None after showing why it cannot be read."""
    try:
        group = _load(str(root), entry, A.folder_stamp(root, entry))
    except MWeightError as exc:
        st.error(f"This run cannot be shown: {exc}")
        return None
    for w in group.warnings:
        st.warning(w)
    return group


# ---------------------------------------------------------------- charts
def share_chart(table, title: str):
    multi = int(table["n_seeds"].max() or 1) > 1
    fig = go.Figure(go.Bar(
        x=table["block"], y=table["share_mean"],
        error_y=dict(type="data", array=table["share_std"], visible=multi),
        marker_color=[PALETTE[0] if k == "modality" else PALETTE[1] for k in table["kind"]],
        customdata=table[["share_std", "beta_mean", "n_seeds"]].to_numpy(),
        hovertemplate="<b>%{x}</b><br>β share %{y:.3f} ± %{customdata[0]:.3f}<br>"
                      "raw β %{customdata[1]:.3f}<br>seeds %{customdata[2]}<extra></extra>",
        text=[f"{v:.0%}" for v in table["share_mean"]], textposition="outside"))
    fig.update_layout(title=title, yaxis_title="β share (sums to 1)", xaxis_title="block",
                      height=380, margin=dict(t=50, b=40), yaxis_range=[0, min(1.05, max(
                          0.1, float((table["share_mean"] + table["share_std"]).max()) * 1.2))])
    return fig


def waterfall_chart(wf, title: str):
    fig = go.Figure(go.Waterfall(
        x=wf["step"], y=wf["value"], measure=wf["measure"],
        text=[f"{v:+.3f}" if m == "relative" else f"{v:.3f}" for v, m in zip(wf["value"], wf["measure"])],
        textposition="outside", connector={"line": {"color": "#999"}},
        hovertemplate="<b>%{x}</b><br>%{y:.4f}<extra></extra>"))
    fig.update_layout(title=title, height=400, margin=dict(t=50, b=40), yaxis_title="contribution")
    return fig


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
        st.caption("3 modalities with motif probabilities 0.8 / 0.4 / 0 (the last is irrelevant); "
                   "600 sequences, 6 epochs; about a minute on a laptop CPU.")
        if st.button("Train a quick demo", key="demo_dna"):
            bar = st.progress(0.0, text="generating data")
            try:
                res = A.train_synthetic(root, "additive", (0.8, 0.4, 0.0), n=600, epochs=6, folder="demo",
                                        on_epoch=_progress_cb(bar, 6))
            except MWeightError as exc:
                st.error(str(exc))
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
def page_overview(root: Path, group: A.RunGroup) -> None:
    st.title(f"Overview · {group.name}")
    n = len(group.runs)
    meta = group.runs[0].meta or {}
    st.caption(f"dataset: {meta.get('dataset') or '?'} · task: {group.task} · "
               f"seeds: {', '.join('-' if s is None else str(s) for s in group.seeds)} · "
               f"blocks: {', '.join(group.blocks)}")
    st.markdown(f"**Reading.** {A.group_reading(group)}")
    head = A.headline_metrics(group, 4)
    if not head.empty:
        cols = st.columns(len(head))
        for col, (_, r) in zip(cols, head.iterrows()):
            val = f"{r['mean']:.3f}" + (f" ± {r['std']:.3f}" if r["n"] > 1 else "")
            col.metric(f"{r['split']} {r['metric']}", val, help=f"{r['label']}; {r['better']} is better")
    left, right = st.columns([3, 2])
    table = A.share_table(group)
    with left:
        title = "β share per block" + (f" (mean ± std over {n} seeds)" if n > 1 else "")
        st.plotly_chart(share_chart(table, title), width="stretch")
        st.markdown(f"**p = {group.p:g}** (raw β have unit {group.p:g}-norm; shares are β normalised to "
                    f"sum 1) · **block normalisation: {group.norm}** · **β: {group.relevance_mode}**")
    with right:
        st.subheader("Metrics (convention labelled)")
        mt = A.metrics_table(group, ("test",))
        if mt.empty:
            mt = A.metrics_table(group, ("valid",))
        shown = mt.assign(value=[f"{m:.4f}" + (f" ± {s:.4f}" if k > 1 else "")
                                 for m, s, k in zip(mt["mean"], mt["std"], mt["n"])],
                          label=[f"{lab} ({b} is better)" for lab, b in zip(mt["label"], mt["better"])])
        st.table(shown[["split", "label", "value"]].rename(columns={"label": "metric (convention)"})
                 .set_index("split"))
    with st.expander("β per block and validation metrics (numbers)"):
        st.dataframe(A.metrics_table(group, ("valid",)), hide_index=True, width="stretch")
        st.dataframe(table.rename(columns={"share_mean": "β share", "share_std": "± std",
                                           "beta_mean": "raw β", "beta_std": "raw β ± std"}),
                     hide_index=True, width="stretch")
    truth = A.truth_for(root, group)
    if truth:
        st.subheader("Against the synthetic ground truth")
        st.caption(truth.get("expected_share_note", ""))
        st.dataframe(A.recovered_vs_truth(group, truth), hide_index=True)


def page_dynamics(root: Path, group: A.RunGroup) -> None:
    st.title(f"Training dynamics · {group.name}")
    what = st.radio("Relevance shown", ["share", "beta"], horizontal=True,
                    format_func={"share": "β share (sums to 1)", "beta": "raw β"}.get, key="dyn_what")
    hist = A.history_long(group, what)
    if hist.empty:
        st.warning("This run has no per-epoch history (history.csv).")
        return
    fig = px.line(hist, x="epoch", y="value", color="block", line_dash="seed" if len(group.runs) > 1 else None,
                  markers=True, color_discrete_sequence=PALETTE,
                  labels={"value": "β share" if what == "share" else "raw β"},
                  title=("β share" if what == "share" else "raw β") + " per block over epochs")
    fig.update_layout(height=380)
    st.plotly_chart(fig, width="stretch")
    vm = A.valid_metric_long(group)
    if vm.empty:
        st.info("No validation metrics in the history.")
        return
    metrics = list(dict.fromkeys(vm["metric"]))
    metric = st.selectbox("Validation metric", metrics, format_func=A.metric_label, key="dyn_metric")
    sub = vm[vm["metric"] == metric]
    fig2 = px.line(sub, x="epoch", y="value", color="seed", markers=True,
                   labels={"value": A.metric_label(metric)}, title=f"validation {A.metric_label(metric)}")
    for best in sorted(set(sub["best_epoch"])):
        if best:
            fig2.add_vline(x=best, line_dash="dot", line_color="#888")
    fig2.update_layout(height=340)
    st.plotly_chart(fig2, width="stretch")
    st.caption("Dotted lines: the epoch selected on the validation split (its checkpoint gives β and the metrics).")


def page_segments(root: Path, group: A.RunGroup) -> None:
    st.title(f"Segment explorer · {group.name}")
    c0, c1, c2, c3, c4 = st.columns([1, 1, 2, 2, 2])
    seed = group.seeds[0]
    if len(group.seeds) > 1:
        seed = c0.selectbox("Seed", group.seeds, key="seg_seed")
    try:
        df = _segments(str(root), group.entry, seed, A.folder_stamp(root, group.entry))
    except MWeightError as exc:
        st.error(f"Segments cannot be shown: {exc}")
        return
    splits = ["all"] + [s for s in ("train", "valid", "test") if s in set(df.get("split", []))]
    split = c1.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0, key="seg_split")
    query = c2.text_input("Search id or transcript", key="seg_query")
    by = c3.selectbox("Sort by", A.SORTS, key="seg_sort")
    block = c4.selectbox("Block", group.blocks, key="seg_block")
    decided = False
    if group.task == "regression":
        decided = st.checkbox(f"only segments where {block} decided the outcome (removing it flips the sign)",
                              key="seg_decided")
    view = A.sort_segments(df, by, block, group.task, split, query, decided)
    st.caption(f"{len(view)} of {len(df)} segments")
    if view.empty:
        st.info("No segment matches.")
        return
    cols = ["id", "split", "label", "prediction"] + (["error"] if "error" in view else ["correct"]) + group.blocks
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
        st.dataframe(view[cols].head(200), hide_index=True, width="stretch", height=520)
    row = view[view["id"].astype(str) == pick].iloc[0]
    with right:
        st.subheader(f"Segment {pick}")
        if str(row.get("transcript", "") or ""):
            st.markdown(f"> {row['transcript']}")
        m1, m2, m3 = st.columns(3)
        m1.metric("true label", f"{row['label']:.3g}")
        m2.metric("prediction", f"{row['prediction']:.3f}" if group.task == "regression"
                  else f"class {int(row['prediction'])}")
        if group.task == "regression":
            m3.metric("error (prediction − label)", f"{row['error']:+.3f}")
        else:
            m3.metric("correct", "yes" if bool(row["correct"]) else "no")
        wf = A.waterfall(row, group.blocks, group.task)
        what = "prediction" if group.task == "regression" else "predicted class's logit"
        st.plotly_chart(waterfall_chart(wf, f"From the bias to the {what}: each block's W_S z_S(x)"),
                        width="stretch")
        st.caption(f"The decomposition is exact: bias + Σ blocks = the {what}.")


def page_compare(root: Path, entries: list[A.RunEntry]) -> None:
    st.title("Compare runs")
    ok = [e for e in entries if e.kind != "broken"]
    if len(ok) < 2:
        st.info("Comparing needs at least two runs in the runs folder.")
        if not ok:
            return
    labels = {e.rel: e.label for e in ok}
    chosen = st.multiselect("Runs", list(labels), default=list(labels)[:2], format_func=labels.get, key="cmp_runs")
    groups = [g for g in (load(root, A.find_entry(ok, rel)) for rel in chosen) if g is not None]
    if not groups:
        return
    shares, metrics, config = A.compare_frames(groups)
    shares.loc[shares["n_seeds"] <= 1, "share_std"] = float("nan")  # no error bar for a single seed
    fig = px.bar(shares, x="block", y="share_mean", color="run", barmode="group", error_y="share_std",
                 color_discrete_sequence=PALETTE, labels={"share_mean": "β share (sums to 1)"},
                 hover_data={"beta_mean": ":.3f", "n_seeds": True}, title="β share per block (mean ± std over seeds)")
    fig.update_layout(height=400)
    st.plotly_chart(fig, width="stretch")
    st.subheader("Test metrics")
    st.table(metrics)
    st.subheader("How the runs differ (config)")
    if config.empty:
        st.write("Same config (apart from seeds).")
    else:
        st.table(config)
    for g in groups:
        st.markdown(f"**{g.name}**: {A.group_reading(g)}")


def page_faithfulness(root: Path, group: A.RunGroup) -> None:
    st.title(f"Faithfulness · {group.name}")
    st.markdown("Does β agree with what the model actually uses? Two measurements next to β share: "
                "**block ablation** removes one block's contribution from every prediction (exact, the "
                "prediction is additive over blocks); **modality permutation** shuffles one modality's "
                "inputs across segments, which disturbs every block containing it.")
    seed = group.seeds[0]
    if len(group.seeds) > 1:
        seed = st.selectbox("Seed", group.seeds, key="faith_seed")
    run = group.run_for(seed)
    saved = A.ablation_results(run.path)
    if saved:
        st.subheader("Saved `mweight ablate` results")
        table = A.saved_ablation_table(saved)
        if table is not None:
            st.dataframe(table, hide_index=True, width="stretch")
        else:
            st.json(saved, expanded=False)
    split = st.selectbox("Split", ["test", "valid"], key="faith_split")
    key = ("faith", group.entry.rel, str(seed), split, A.folder_stamp(root, group.entry))
    if st.button("Measure importance", key="faith_go") or key in st.session_state:
        if key not in st.session_state:
            bar = st.progress(0.0, text="loading the model")
            try:
                st.session_state[key] = A.faithfulness(root, group, seed, split,
                                                       progress=lambda f, t: bar.progress(min(1.0, f), text=t))
            except MWeightError as exc:
                st.error(f"Importance cannot be measured: {exc}")
                return
            bar.progress(1.0, text="done")
        res = st.session_state[key]
        st.caption(f"{res['split']} split, {res['n']} segments; base {res['label']} = {res['base']:.4f}; "
                   f"importance = how much it gets worse, clipped at 0 and normalised to sum 1. "
                   f"Computed by {res['source']}.")
        b = res["blocks"]
        long = b.melt(id_vars=["block"], value_vars=["beta_share", "importance_share"], var_name="measure")
        long["measure"] = long["measure"].map({"beta_share": "β share", "importance_share": "ablation importance"})
        fig = px.bar(long, x="block", y="value", color="measure", barmode="group", color_discrete_sequence=PALETTE,
                     title="Blocks: β share vs ablation importance", labels={"value": "share"})
        st.plotly_chart(fig, width="stretch")
        rho = A.rank_agreement(b["beta_share"], b["degradation"])
        st.metric("rank agreement (Spearman) of β and ablation", "n/a" if rho != rho else f"{rho:.2f}")
        m = res["modalities"]
        value_vars = ["beta_share_all_blocks_with_it"] + (["ablation_share"] if "ablation_share" in m else []) + [
            "importance_share"]
        longm = m.melt(id_vars=["modality"], value_vars=value_vars, var_name="measure")
        longm["measure"] = longm["measure"].map({"beta_share_all_blocks_with_it": "β share of its blocks",
                                                 "ablation_share": "ablation importance (training mean)",
                                                 "importance_share": "permutation importance"})
        fig2 = px.bar(longm, x="modality", y="value", color="measure", barmode="group",
                      color_discrete_sequence=PALETTE, labels={"value": "share"},
                      title="Modalities: β share of every block containing it vs measured importance")
        st.plotly_chart(fig2, width="stretch")
        st.dataframe(b, hide_index=True, width="stretch")
        st.dataframe(m, hide_index=True, width="stretch")


def page_playground(root: Path) -> None:
    st.title("Synthetic playground")
    st.markdown("Generate DNA-like sequences whose ground truth is known, train on them here, and check "
                "that β finds the relevant modalities (or the XOR interaction).")
    design = st.radio("Design", ["additive", "xor"], horizontal=True, key="pg_design",
                      format_func={"additive": "additive (motif probability p_m per modality)",
                                   "xor": "XOR (label = XOR of m1 and m2; m3 irrelevant)"}.get)
    p = []
    if design == "additive":
        m = st.slider("Modalities", 2, 5, 3, key="pg_m")
        cols = st.columns(m)
        defaults = [0.8, 0.4, 0.0, 0.0, 0.0]
        p = [cols[i].slider(f"p_m{i + 1}", 0.0, 1.0, defaults[i], 0.05, key=f"pg_p{i}") for i in range(m)]
    c1, c2, c3 = st.columns(3)
    n = c1.select_slider("Sequences", [200, 400, 600, 1000, 2000, 4000], value=600, key="pg_n")
    epochs = c2.slider("Epochs", 1, 30, 6, key="pg_epochs")
    seed = int(c3.number_input("Seed", 0, 10_000, 0, key="pg_seed"))
    if st.button("Generate and train", key="pg_go"):
        bar = st.progress(0.0, text="generating data")
        try:
            res = A.train_synthetic(root, design, p, n=n, epochs=epochs, seed=seed,
                                    on_epoch=_progress_cb(bar, epochs))
        except MWeightError as exc:
            st.error(str(exc))
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
    st.success(f"Trained `{last['rel']}` (open it on the other pages from the sidebar).")
    table = A.recovered_vs_truth(group, last["truth"])
    long = table.melt(id_vars="block", var_name="what", value_name="share")
    long["what"] = long["what"].map({"recovered": "recovered β share", "expected": "ground truth"})
    fig = px.bar(long, x="block", y="share", color="what", barmode="group", color_discrete_sequence=PALETTE,
                 title="Recovered β share vs ground truth")
    st.plotly_chart(fig, width="stretch")
    st.caption(last["truth"].get("expected_share_note", ""))
    st.markdown(f"**Reading.** {A.group_reading(group)}")
    head = A.headline_metrics(group, 2)
    st.dataframe(head[["split", "label", "mean"]], hide_index=True)


# ---------------------------------------------------------------- main
def main() -> None:
    st.set_page_config(page_title="mweight", page_icon="⚖️", layout="wide")
    root = A.runs_root(_runs_dir_arg())
    entries = A.discover_runs(root)
    qp = st.query_params

    asked_page = qp.get("page", "overview")
    if asked_page not in PAGES:
        st.warning(f"Unknown page {asked_page!r}; showing the overview.")
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
            st.warning(f"{asked_run!r} is not a run inside the runs folder; choose one in the sidebar.")
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
     "faithfulness": page_faithfulness}[page](root, group)


if __name__ == "__main__":
    main()
