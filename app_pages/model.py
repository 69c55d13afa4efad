"""Model: pick an architecture and its sizes, see what it computes, set how it is trained."""

import streamlit as st

import appstate
from app_pages import PAGES
from ncf import plots, registry
from ncf.diagram import architecture_dot
from ncf.errors import ConfigError, NCFError
from ncf.models import describe_architecture, get_emb_sz

ss = st.session_state
LABELS = {name: spec.label for name, spec in registry.REGISTRY.items()}
EXPLAIN = {name: (spec.description, spec.formula) for name, spec in registry.REGISTRY.items()}


def on_model_change() -> None:
    """Switching model starts from that model's own sizes (iALS wants 128 factors, a NeuMF for a class 8)."""
    ss.layers = appstate.default_layers(ss.model)
    ss.factors = appstate.default_factors(ss.model)
    if "pretrain" not in registry.get(ss.model).settings:
        ss.pretrain = False
    ss.pop("lr_result", None)  # a range test belongs to the model it ran on
    appstate.on_objective_change()


def on_objective_change() -> None:
    ss.pop("lr_result", None)
    appstate.on_objective_change()


st.header("Model")
appstate.preset_line()
try:
    ds = appstate.current_dataset()
except NCFError as e:
    st.error(appstate.plain(e))
    ds = None
left, right = st.columns([5, 6], gap="large")

with left:
    st.selectbox("Model", list(LABELS), format_func=LABELS.get, key="model", persist_state="session", on_change=on_model_change,
                 help="The architecture. NeuMF is the paper's model and the default.")
    m = ss.model
    spec = registry.get(m)
    if "pretrain" in spec.settings:
        st.checkbox("Pre-train GMF and MLP first, then start NeuMF from them", key="pretrain", persist_state="session",
                    help="He et al.'s recipe: three trainings in one job (GMF → MLP → NeuMF), NeuMF starting as the "
                         "α-weighted blend of the two and fine-tuned gently with plain SGD. Epochs, learning "
                         "rate, optimiser and weight decay left at their defaults follow that recipe.")
        if ss.pretrain:
            st.slider("α: weight of the GMF half when combining", 0.0, 1.0, step=0.05, key="alpha", persist_state="session")
    if len(spec.objectives) > 1:
        st.selectbox("Objective", appstate.OBJECTIVE_CHOICES, key="objective", persist_state="session", on_change=on_objective_change,
                     format_func={"auto": "default for this model", "implicit": "implicit: did the user interact? "
                                  "(log loss, HR/NDCG)", "explicit": "explicit: predict the rating (MSE, RMSE)"}.get,
                     help="Implicit feedback treats every observed pair as a positive and samples unobserved "
                          "items as negatives. Explicit feedback regresses the rating itself.")
    c1, c2 = st.columns(2)
    if "factors" in spec.settings:
        c1.number_input("Predictive factors k", min_value=1, max_value=512, step=1, key="factors", persist_state="session",
                        help="Size of the GMF / dot-product embeddings: how many numbers describe a user or item.")
    if "layers" in spec.settings:
        c2.text_input("Tower layers", key="layers", persist_state="session",
                      help="Widths of the MLP tower, comma separated. For MLP and NeuMF the first is the two "
                           "embeddings concatenated (so each embedding is half of it); for EmbeddingNN they are "
                           "the hidden layers after the embeddings.")
    if "emb_sizes" in spec.settings:
        rule_u = get_emb_sz(ds.n_users) if ds is not None else 0
        rule_i = get_emb_sz(ds.n_items) if ds is not None else 0
        e1, e2 = st.columns(2)
        e1.number_input(f"User embedding size (0 = rule: {rule_u})", min_value=0, max_value=1024, key="emb_user", persist_state="session",
                        help="fastai's rule of thumb: min(600, round(1.6 · n^0.56)) for n users or items.")
        e2.number_input(f"Item embedding size (0 = rule: {rule_i})", min_value=0, max_value=1024, key="emb_item", persist_state="session")
        e1.slider("Dropout", 0.0, 0.9, step=0.05, key="dropout", persist_state="session")
        e2.checkbox("Batch normalisation", key="batch_norm", persist_state="session")

    st.subheader("Training")
    if ss.get("train_note"):
        st.info(ss.pop("train_note"))
    if m == "neumf" and ss.pretrain:
        plan_cfg = appstate.train_config()
        st.caption(f"**Pre-training runs:** {appstate.pipeline_plan(plan_cfg, appstate.resolved_objective())}. "
                   "A setting below left at its default follows this recipe. A changed epoch count applies to every "
                   "stage, a changed rate to GMF and MLP, a changed optimiser (at that rate) to all three: a fast "
                   "fine-tune can undo what pre-training built.",
                   help="The recipe's stage epochs were chosen on a validation hold-out of ML-1M; a gentle SGD "
                        "fine-tune keeps the blend of the two pre-trained halves, a larger rate or AdamW lets them "
                        "co-adapt and loses it.")
    t = st.columns(3)
    t[0].number_input("Epochs", min_value=1, max_value=200, step=1, key="epochs", persist_state="session",
                      help="Passes over all training interactions.")
    t[1].select_slider("Batch size", appstate.BATCH_SIZES, key="batch_size", persist_state="session",
                       help="Examples per gradient step: larger is faster per epoch, smaller updates more often. "
                            "auto: the recipe's size (4096 for ranking, 512 for ratings), halved for a small "
                            "dataset until an epoch takes at least 64 steps.")
    t[2].number_input("Learning rate", min_value=1e-6, max_value=1.0, step=5e-4, format="%.4g", key="lr", persist_state="session",
                      help="Step size of the optimiser. Use the range test below to find a good one.")
    t = st.columns(3)
    t[0].selectbox("Optimiser", appstate.CHOICES["optimizer"], key="optimizer", persist_state="session")
    t[1].number_input("Weight decay", min_value=0.0, max_value=1.0, step=1e-5, format="%.4g", key="weight_decay", persist_state="session",
                      help="Shrinks every weight a little at each step (fastai's 'wd'), which fights overfitting: "
                           "with AdamW it is decoupled from the gradient, with the others an L2 penalty. "
                           "0.1 with AdamW is the recipe for both objectives.")
    explicit = appstate.resolved_objective() == "explicit" or ss.model == "pop"
    t[2].number_input("Negatives per positive", min_value=0, max_value=50, step=1, key="n_negatives", persist_state="session",
                      disabled=explicit,
                      help=("Not used: " + ("this model learns nothing." if ss.model == "pop" else
                            "a rating model learns from the ratings themselves, no sampled negatives.")) if explicit
                      else "Implicit objective: for every observed pair, this many unobserved items are drawn "
                           "as examples of 'not interacted' each epoch (the paper uses 4).")
    t = st.columns([1, 2], vertical_alignment="bottom")
    t[0].number_input("Seed", min_value=0, step=1, key="seed", persist_state="session", help="Same seed, same initial weights and samples.")
    t[1].checkbox("One-cycle learning-rate schedule", key="one_cycle", persist_state="session",
                  help="fastai's fit_one_cycle: warm the learning rate up, then anneal it.")

# Inline validation: an impossible setting is named here, before anything is trained.
cfg = error = None
try:
    cfg = appstate.run_config()
except ConfigError as e:
    error = str(e)

with right:
    title, formula = EXPLAIN[ss.model]
    if ss.model not in ("embnn", "pop") and appstate.resolved_objective() == "explicit":
        # A rating model squeezes the same z into the rating range instead of a probability.
        formula = formula.replace(r"\hat y_{ui} = \sigma", r"\hat r_{ui} = \mathrm{sigmoid\_range}")
    st.markdown(f"**{LABELS[ss.model]}**")
    st.write(title)
    st.latex(formula)
    if error:
        st.error(appstate.plain(error))
    elif ds is None:
        st.info("Load the dataset on the Data page to see the layer sizes.")
    else:
        layers = describe_architecture(cfg.model, ds.n_users, ds.n_items)
        total = sum(r["params"] for r in layers)
        st.metric("Parameters", f"{total:,}", help="Numbers the model learns; embeddings are most of them.")
        drawn = registry.get(cfg.model.model).gradient or cfg.model.model == "pop"
        if drawn:
            st.caption("The network for your data, from the ids at the top to the prediction at the bottom; "
                       "each arrow carries a tensor of the shape written on it (B: the batch size).")
            st.graphviz_chart(architecture_dot(cfg.model, ds.n_users, ds.n_items), width="stretch")
        else:
            st.caption("Fitted in closed form or by alternating solves, not as a network of layers: the table "
                       "lists what it stores for your data.")
        with st.expander("Layers and their parameters", expanded=not drawn):
            st.dataframe([{"layer": r["name"], "output": r["shape"], "parameters": r["params"], "what": r["note"]}
                          for r in layers], hide_index=True, width="stretch")

with left:
    st.subheader("Learning-rate range test")
    st.caption("Trains briefly while raising the learning rate from tiny to huge; a good rate sits where "
               "the loss still falls steeply, before it blows up (fastai's lr_find).")
    if st.button("Run the range test", disabled=cfg is None or ds is None or not registry.get(ss.model).gradient):
        from ncf.train import lr_find

        with st.spinner("Running the range test…"):
            try:
                found = lr_find(cfg, appstate.current_split())
            except NCFError as e:
                st.error(appstate.plain(e))
            else:
                ss.lr_result = {"lrs": list(found.lrs), "losses": list(found.losses),
                                "suggestion": float(found.suggestion), "for": cfg.model.to_dict()}
    # Shown only for the model it ran on: a link or another page may have changed the model since.
    if ss.get("lr_result") and cfg is not None and ss.lr_result.get("for") == cfg.model.to_dict():
        r = ss.lr_result
        st.plotly_chart(plots.lr_finder(r["lrs"], r["losses"], r["suggestion"]), width="stretch")
        st.button(f"Use the suggested rate {r['suggestion']:.2g}", on_click=lambda: ss.update(lr=r["suggestion"]))

st.divider()
st.caption("Share these settings: the link opens the same dataset and model settings.")
st.code(appstate.share_link(), language=None)
if cfg is not None:
    st.page_link(PAGES.train, label="Next: train it", icon=":material/arrow_forward:")
