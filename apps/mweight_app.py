"""The mweight Streamlit app, for a source checkout.

    streamlit run apps/mweight_app.py -- RUNS_DIR

is the same as ``mweight app RUNS_DIR``. The pages live in ``mweight/app_main.py``
(shipped inside the package so the ``mweight app`` console script finds them in any
install) and all logic in ``mweight/appdata.py``; this file only re-exports them.
"""
from mweight.app_main import main

main()
