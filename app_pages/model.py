"""Model: pick an architecture and its sizes, see what it computes, set how it is trained."""

import streamlit as st

import appstate
from ncf import plots
from ncf.diagram import architecture_dot
from ncf.errors import ConfigError, NCFError
from ncf.models import describe_architecture, get_emb_sz

ss = st.session_state
LABELS = {"neumf": "NeuMF (GMF + MLP, the paper's model)", "gmf": "GMF (generalised matrix factorisation)",
          "mlp": "MLP (a tower over concatenated embeddings)", "dot": "Dot product (classic matrix factorisation)",
          "embnn": "EmbeddingNN (fastai's rating regressor)", "pop": "Most popular (baseline, nothing learned)"}
EXPLAIN = {
    "gmf": ("Each user and item gets a vector of *k* numbers (its embedding). GMF multiplies them element by "
            "element and a learned weight vector **h** decides how much each factor matters.",
            r"\hat y_{ui} = \sigma\big(\mathbf h^\top (\mathbf p_u \odot \mathbf q_i) + b\big)"),
    "mlp": ("The user and item embeddings are concatenated and passed through a tower of layers that halve in "
            "width; the network can learn interactions a dot product cannot express.",
            r"\mathbf h_0 = [\mathbf p_u ; \mathbf q_i],\quad \mathbf h_\ell = \mathrm{ReLU}(W_\ell \mathbf h_{\ell-1} "
            r"+ \mathbf b_\ell),\quad \hat y_{ui} = \sigma(\mathbf w^\top \mathbf h_L + b)"),
    "neumf": ("He et al.'s Neural Matrix Factorisation: a GMF path and an MLP path with *separate* embeddings, "
              "their last vectors concatenated into one output layer. Pre-training GMF and MLP first and "
              "starting NeuMF from them is the paper's recipe for the best accuracy.",
              r"\hat y_{ui} = \sigma\big(\mathbf h^\top [\,\mathbf p^G_u \odot \mathbf q^G_i \,;\, "
              r"\mathrm{MLP}([\mathbf p^M_u ; \mathbf q^M_i])\,] + b\big)"),
    "dot": ("The classic matrix-factorisation baseline: a user's score for an item is the dot product of their "
            "embeddings plus a bias for each (how generous the user is, how liked the item is).",
            r"\hat y_{ui} = \sigma\big(\mathbf p_u^\top \mathbf q_i + b_u + b_i\big)"),
    "embnn": ("fastai's collaborative-filtering network (fastbook ch. 8): embeddings sized by a rule of thumb, "
              "concatenated, a tower of layers, and a sigmoid squeezed into the rating range. It predicts "
              "ratings (explicit feedback) by default.",
              r"\hat r_{ui} = \mathrm{sigmoid\_range}\big(\mathrm{MLP}([\mathbf e_u ; \mathbf e_i]),\ "
              r"\mathrm{low},\ \mathrm{high}\big)"),
    "pop": ("Recommends what most people interacted with, the same list for everyone. Any model worth its "
            "training time must beat it.", r"\mathrm{score}(u, i) = |\{v : (v, i) \in \text{train}\}|"),
}


def on_model_change() -> None:
    """Keeps the tower sizes sensible: switching model resets them if they were that model's default."""
    ss.layers = appstate.default_layers(ss.model)
    if ss.model != "neumf":
        ss.pretrain = False
    ss.pop("lr_result", None)  # a range test belongs to the model it ran on
    appstate.on_objective_change()


def on_objective_change() -> None:
    ss.pop("lr_result", None)
    appstate.on_objective_change()


st.header("Model")
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
    if m == "neumf":
        st.checkbox("Pre-train GMF and MLP first, then start NeuMF from them", key="pretrain", persist_state="session",
                    help="He et al.'s recipe: three trainings in one job (GMF → MLP → NeuMF), NeuMF starting as the "
                         "α-weighted blend of the two and fine-tuned gently with plain SGD. Epochs, learning "
                         "rate, optimiser and weight decay left at their defaults follow that recipe.")
        if ss.pretrain:
            st.slider("α: weight of the GMF half when combining", 0.0, 1.0, step=0.05, key="alpha", persist_state="session")
    if m != "pop":
        st.selectbox("Objective", appstate.OBJECTIVE_CHOICES, key="objective", persist_state="session", on_change=on_objective_change,
                     format_func={"auto": "default for this model", "implicit": "implicit: did the user interact? "
                                  "(log loss, HR/NDCG)", "explicit": "explicit: predict the rating (MSE, RMSE)"}.get,
                     help="Implicit feedback treats every observed pair as a positive and samples unobserved "
                          "items as negatives. Explicit feedback regresses the rating itself.")
    c1, c2 = st.columns(2)
    if m in ("gmf", "neumf", "dot"):
        c1.number_input("Predictive factors k", min_value=1, max_value=512, step=1, key="factors", persist_state="session",
                        help="Size of the GMF / dot-product embeddings: how many numbers describe a user or item.")
    if m in ("mlp", "neumf", "embnn"):
        c2.text_input("Tower layers", key="layers", persist_state="session",
                      help="Widths of the MLP tower, comma separated. For MLP and NeuMF the first is the two "
                           "embeddings concatenated (so each embedding is half of it); for EmbeddingNN they are "
                           "the hidden layers after the embeddings.")
    if m == "embnn":
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
        st.caption("The network for your data, from the ids at the top to the prediction at the bottom; "
                   "each arrow carries a tensor of the shape written on it (B: the batch size).")
        st.graphviz_chart(architecture_dot(cfg.model, ds.n_users, ds.n_items), width="stretch")
        with st.expander("Layers and their parameters"):
            st.dataframe([{"layer": r["name"], "output": r["shape"], "parameters": r["params"], "what": r["note"]}
                          for r in layers], hide_index=True, width="stretch")

with left:
    st.subheader("Learning-rate range test")
    st.caption("Trains briefly while raising the learning rate from tiny to huge; a good rate sits where "
               "the loss still falls steeply, before it blows up (fastai's lr_find).")
    if st.button("Run the range test", disabled=cfg is None or ds is None or ss.model == "pop"):
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
    st.page_link("app_pages/train.py", label="Next: train it", icon=":material/arrow_forward:")
