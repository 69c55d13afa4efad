"""A class on one server, in a real browser against real `streamlit run` servers: many sessions at
once, sessions kept apart, memory given back, nothing let in through uploads, names or links."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import pytest

from benchmarks.load_test import run_load_test, tree_rss_bytes
from tests.e2e.conftest import goto_page, serving, settle, shot, start_server, wait_healthy

pytestmark = pytest.mark.e2e


INJECTED = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=2</script>"
RUN_NAME = "<img src=x onerror=window.__pwned=3><b>run</b>"  # within the field's 60 characters
# Anything the injected text could have become in the page.
PWNED = """() => window.__pwned !== undefined
  || [...document.querySelectorAll('img')].some(i => (i.getAttribute('src') || '') === 'x')
  || [...document.querySelectorAll('script')].some(s => s.textContent.includes('__pwned'))"""


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    """A server with a small upload limit (100 KiB) and a short disconnected-session TTL."""
    tmp = tmp_path_factory.mktemp("class")
    with serving(tmp, {"NCF_MAX_UPLOAD_MB": "0.1", "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "2"}) as (proc, url):
        yield url, proc, tmp


def new_page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


def choose_file(page, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.locator('[data-testid="stFileUploader"] button').last.click()  # "Browse files"
    chooser.value.set_files(str(path))
    settle(page, 90_000)


def upload_and_load(page, path: Path, shown_as: str) -> None:
    """Loads a good file as a user does: Upload a file, choose it, Load this file, see it loaded."""
    page.get_by_role("radio", name="Upload a file").click()
    settle(page)
    choose_file(page, path)
    page.get_by_role("button", name="Load this file").click()
    settle(page)
    page.get_by_text(f"Loaded: {shown_as}").wait_for()


def remove_file(page, name: str) -> None:
    page.get_by_role("button", name=f"Remove {name}").click()
    settle(page, 90_000)


def metric_value(page, label: str) -> str:
    return page.locator('[data-testid="stMetric"]', has_text=label).first.locator(
        '[data-testid="stMetricValue"]').inner_text()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def ratings_csv(n_users: int = 40, n_items: int = 60, per_user: int = 12) -> bytes:
    rows = ["userId,movieId,rating,timestamp"] + [
        f"{u},{(u * 7 + j) % n_items},{1 + (u + j) % 5},{1_000_000 + u * 100 + j}"
        for u in range(1, n_users + 1) for j in range(per_user)]
    return ("\n".join(rows) + "\n").encode()


# ---------------------------------------------------------------- many at once


def test_four_sessions_at_once_all_train_and_read_recommendations(tmp_path):
    """The CI form of benchmarks/load_test.py (30 sessions there)."""
    fig = run_load_test(sessions=4, epochs=1, timeout_s=240, settle_s=3, tmp=tmp_path)
    print(fig)
    assert fig["failed"] == 0, fig["errors"]
    assert fig["example_row"] and fig["example_row"][1], "a recommendation row with a title was read"


def test_sessions_do_not_see_each_others_uploads_or_jobs(guarded_server, browser, tmp_path):
    url, _, _ = guarded_server
    upload = tmp_path / "private ratings.csv"
    upload.write_bytes(ratings_csv())
    ctx_a, a = new_page(browser)
    ctx_b, b = new_page(browser)
    try:
        a.goto(f"{url}/data?model=gmf&epochs=1")  # a short job: the next tests share the one worker
        a.get_by_text("Loaded: synthetic").wait_for()
        upload_and_load(a, upload, "private ratings.csv")
        goto_page(a, "Train")
        a.get_by_role("button", name="Train", exact=True).click()
        a.wait_for_function("() => location.search.includes('job=')")
        job = re.search(r"job=([^&]+)", a.url).group(1)

        b.goto(f"{url}/data")
        b.get_by_text("Loaded: synthetic").wait_for()
        assert metric_value(b, "Users") == "600"
        sidebar = b.locator('[data-testid="stSidebar"]').inner_text()
        assert "your upload" not in sidebar and "in progress" not in sidebar
        b.get_by_role("radio", name="Upload a file").click()
        settle(b)
        assert "private ratings.csv" not in b.inner_text("body")  # the file chooser is empty here
        goto_page(b, "Train")
        b.get_by_text("Press Train", exact=False).first.wait_for()  # a loaded box can still be rendering the page
        body = b.inner_text("body")
        assert "Press Train" in body and job not in body and "job=" not in b.url
        assert "synthetic" in body and "private ratings" not in body
        shot(b, "class-other-session")
    finally:
        ctx_a.close()
        ctx_b.close()


def test_memory_comes_back_after_twenty_sessions_close(guarded_server, browser):
    """The server's own RSS (its job workers excluded: they are a fixed pool) after twenty sessions
    opened the Data page and closed stays near what it was after one."""
    url, proc, _ = guarded_server

    def visit(n: int) -> None:
        contexts = [new_page(browser) for _ in range(n)]
        for _, page in contexts:
            page.goto(f"{url}/data", wait_until="commit")
        for _, page in contexts:
            page.get_by_text("Loaded: synthetic").wait_for(timeout=120_000)
            page.locator('[data-testid="stMetric"]', has_text="Users").wait_for()
        for context, _ in contexts:
            context.close()
        time.sleep(5)  # the TTL (2 s) for disconnected sessions, plus the cleanup tick

    visit(1)  # warm: the dataset, plots and modules are loaded once per server
    before = tree_rss_bytes(proc.pid, descendants=False)
    visit(20)
    after = tree_rss_bytes(proc.pid, descendants=False)
    print(f"server RSS after 1 session {before / 2**20:.0f} MiB, after 20 more came and went {after / 2**20:.0f} MiB")
    assert after - before < 150 * 2**20, (before / 2**20, after / 2**20)


# ---------------------------------------------------------------- nothing let in


def bad_inputs(tmp: Path) -> list[tuple[str, bytes, str]]:
    """(file name, content, what the message says)."""
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
    good = ratings_csv(4, 4, 2)
    return [
        ("empty.csv", b"\n\n", "the file is empty"),
        ("header.csv", b"userId,movieId,rating\n", "no rows"),
        ("single.csv", b"42\n43\n44\n", "single column"),
        ("words.csv", b"user,item,rating\n1,1,good\n2,1,bad\n", "non-numeric"),
        ("picture.csv", png, "binary"),
        ("saved-page.csv", b"<!DOCTYPE html>\n<html><head><title>404</title></head></html>\n", "HTML page"),
        ("traversal.zip", _zip({"../../evil.csv": good}), "outside the archive"),
        ("absolute.zip", _zip({"/etc/ratings.csv": good}), "outside the archive"),
        ("nested.zip", _zip({"inner.zip": _zip({"ratings.csv": good})}), "nested archives"),
        ("empty.zip", _zip({}), "archive is empty"),
        ("noratings.zip", _zip({"README.txt": b"nothing", "movies.csv": b"movieId,title\n"}), "no ratings file"),
        ("bomb.zip", _zip({"ratings.csv": b"0" * (16 << 20)}), "decompression bomb"),
        ("big.csv", ratings_csv(400, 200, 30), "over the upload limit"),
    ]


def test_every_bad_upload_shows_its_message_and_keeps_the_loaded_data(guarded_server, page, tmp_path):
    url, _, _ = guarded_server
    page.goto(f"{url}/data")
    page.get_by_text("Loaded: synthetic").wait_for()
    page.get_by_role("radio", name="Upload a file").click()
    settle(page)
    for name, content, message in bad_inputs(tmp_path):
        path = tmp_path / name
        path.write_bytes(content)
        choose_file(page, path)
        load = page.get_by_role("button", name="Load this file")
        error = page.locator('[data-testid="stAlertContentError"]', has_text=name)
        error.or_(load).first.wait_for(timeout=60_000)
        if not error.count():  # detection passed; the full read refuses it
            load.click()
            settle(page)
        alerts = page.locator('[data-testid="stAlertContentError"]', has_text=name)
        alerts.first.wait_for(timeout=60_000)  # this file's message (the last one's may linger a moment)
        text = " ".join(alerts.all_inner_texts())
        assert message in text and name in text, (name, text)
        assert metric_value(page, "Users") == "600", name  # the synthetic data is still the dataset
        assert not page.locator('[data-testid="stException"]').count(), name
        if name == "bomb.zip":
            shot(page, "class-bad-upload")
        remove_file(page, name)


def test_titles_and_run_names_render_as_text(guarded_server, page, tmp_path):
    url, _, _ = guarded_server
    movies = "movieId,title,genres\n" + "".join(
        f"{i},\"{INJECTED} {SCRIPT} {i}\",Drama|{SCRIPT}\n" for i in range(60))
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip({"ml/ratings.csv": ratings_csv(), "ml/movies.csv": movies.encode()}))
    page.goto(f"{url}/data?model=gmf&epochs=1")
    page.get_by_text("Loaded: synthetic").wait_for()
    upload_and_load(page, archive, "ml")  # the archive's folder names the dataset
    goto_page(page, "Train")
    page.get_by_label("Run name (shown to everyone comparing runs)").fill(RUN_NAME)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Saved as run").wait_for(timeout=120_000)
    settle(page)
    assert RUN_NAME in page.locator('[data-testid="stSidebar"]').inner_text()  # shown as typed
    for title in ("Recommendations", "Embeddings", "Compare runs"):
        goto_page(page, title)
        page.wait_for_timeout(1500)
        assert not page.evaluate(PWNED), title
        assert not page.locator('[data-testid="stException"]').count(), title
    goto_page(page, "Recommendations")
    page.get_by_role("tab", name="Similar items").click()
    settle(page)
    assert not page.evaluate(PWNED)
    assert "<img src=x" in page.inner_text("body")  # the selected title, as text
    shot(page, "class-injected-titles")


@pytest.mark.parametrize(("query", "warning"), [
    ("source=../../etc/passwd", "Ignored the link's source"),
    ("source=/etc/passwd", "Ignored the link's source"),
    ("run=../x", "Ignored the link's run"),
    ("run=..%2F..%2Fetc", "Ignored the link's run"),
    ("job=../../.jobs/x", None),  # not a job id: silently not adopted
    ("epochs=ten&model=%3Cb%3Ex", "Ignored the link's epochs"),
])
def test_path_like_link_values_are_refused_not_used(guarded_server, page, query, warning):
    url, _, _ = guarded_server
    page.goto(f"{url}/data?{query}")
    page.get_by_text("Loaded: synthetic").wait_for()
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    if warning:
        assert warning in sidebar
    assert "Dataset · synthetic" in sidebar.replace("\n", " ")
    assert "passwd" not in page.locator('[data-testid="stMain"]').inner_text()
    assert not page.locator('[data-testid="stException"]').count()
    assert not page.evaluate(PWNED)


# ---------------------------------------------------------------- nothing lost


def test_a_job_whose_data_fails_in_the_worker_says_why_and_the_app_goes_on(guarded_server, page, tmp_path):
    """The upload's kept copy (what the worker process reads) is corrupted between loading it in the
    app and training: the job fails in the worker, the Train page shows why, the app keeps working."""
    url, _, server_tmp = guarded_server
    upload = tmp_path / "fragile.csv"
    upload.write_bytes(ratings_csv(30, 40, 10))
    page.goto(f"{url}/data?model=gmf&epochs=1")
    page.get_by_text("Loaded: synthetic").wait_for()
    upload_and_load(page, upload, "fragile.csv")
    kept = list((server_tmp / "cache" / "uploads").glob("*/fragile.csv"))
    assert len(kept) == 1
    kept[0].write_bytes(b"<html><body>gone</body></html>")
    goto_page(page, "Train")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Failed").first.wait_for(timeout=120_000)
    error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "HTML page" in error, error
    assert not page.locator('[data-testid="stException"]').count()
    shot(page, "class-failed-job")
    goto_page(page, "Data")  # the app goes on
    page.get_by_text("Loaded: fragile.csv").wait_for()


def test_a_training_worker_does_not_run_the_app_again(guarded_server, page):
    """Streamlit makes app.py the server's __main__, and a spawned worker re-imports __main__: without
    app.py's guard each worker ran the whole app headless before its first job, which Streamlit
    reports in the server's log."""
    url, _, server_tmp = guarded_server
    page.goto(f"{url}/train?model=gmf&epochs=1")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Saved as run").wait_for(timeout=120_000)
    log = "".join(f.read_text(errors="replace") for f in server_tmp.glob("streamlit-*.log"))
    assert "Uvicorn server started" in log or "You can now view" in log  # the right log was read
    for symptom in ("missing ScriptRunContext", "Session state does not function", "use Streamlit in a file"):
        assert symptom not in log, symptom


def test_an_unusable_models_folder_is_a_message_not_a_crash(tmp_path, browser):
    blocker = tmp_path / "models-is-a-file"
    blocker.write_text("not a folder")
    with serving(tmp_path, {"NCF_MODELS_DIR": str(blocker)}) as (_, url):
        context, page = new_page(browser)
        try:
            page.goto(f"{url}/train")
            page.get_by_text("Training is not available on this server").wait_for()
            assert "Cannot keep training jobs in" in page.inner_text("body")
            shot(page, "class-models-unwritable")
            for title in ("Compare runs", "Recommendations", "Data"):
                goto_page(page, title)
                assert not page.locator('[data-testid="stException"]').count(), title
            page.get_by_text("Loaded: synthetic").wait_for()
        finally:
            context.close()


def test_killing_the_app_server_at_random_moments_loses_nothing(tmp_path, browser):
    """The real `streamlit run` server is killed with SIGKILL at a random moment after Train (while
    the worker starts, trains or saves), four times over one models folder, and restarted each time.
    After every kill, every run on disk loads (ncf.runs.load_run) and the list shows all of them;
    the restarted app shows the killed job as interrupted (or finished, if it beat the kill)."""
    import random

    from ncf.runs import list_runs, load_run

    models = tmp_path / "models"
    env = {"NCF_MODELS_DIR": str(models)}
    rng = random.Random(6)
    delays = [rng.uniform(0.5, 3.0), rng.uniform(3.0, 6.0), rng.uniform(6.0, 9.0), rng.uniform(9.0, 12.0)]
    rng.shuffle(delays)
    context, page = new_page(browser)
    jobs: list[str] = []
    try:
        for delay in [*delays, None]:
            proc, url = start_server(tmp_path, extra_env=env)
            try:
                wait_healthy(url, proc)
                if jobs:  # the app after a kill: the killed job is shown, not lost or "running"
                    page.goto(f"{url}/train?job={jobs[-1]}")
                    page.get_by_text(re.compile("Interrupted|Done|Stopped")).first.wait_for()
                    assert not page.locator('[data-testid="stException"]').count()
                if delay is None:
                    break
                page.goto(f"{url}/train?model=gmf&epochs=3")
                page.get_by_role("button", name="Train", exact=True).click()
                page.wait_for_function("() => location.search.includes('job=')")
                jobs.append(re.search(r"job=([^&]+)", page.url).group(1))
                time.sleep(delay)
            finally:
                proc.kill()  # SIGKILL: no exit hook, no cleanup; the worker notices and exits
                proc.wait()
            infos = list_runs(models)
            for info in infos:
                assert info.error is None, info.error
                assert load_run(models / info.id).id == info.id
        shot(page, "class-after-kills")
        interrupted = page.get_by_text("Interrupted").count()
        print(f"kills after {[round(d, 1) for d in delays]} s; runs saved: {len(list_runs(models))}; "
              f"last job shown interrupted: {bool(interrupted)}")
    finally:
        context.close()
