"""NCF Lab: the router and frame of the Streamlit app (placeholder until the app lands)."""

import streamlit as st

st.set_page_config(page_title="NCF Lab", page_icon="🎬", layout="wide")
st.title("NCF Lab")
st.write("Neural Collaborative Filtering, hands on. The app pages are being built.")
