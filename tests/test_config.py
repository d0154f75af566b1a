"""Settings from the environment: each variable read in one place, defaults from the dataclasses."""

from pathlib import Path

from qa.config import EVAL_CACHE, AppConfig, settings_from_env
from qa.engine import Settings


def test_defaults_come_from_the_dataclasses():
    assert settings_from_env({}) == Settings()
    config = AppConfig.from_env({})
    assert config == AppConfig() and config.eval_cache == EVAL_CACHE and config.auth is None


def test_each_variable_sets_its_field():
    env = {"QA_CORPUS_DIR": "/c", "QA_INDEX_DIR": "/i", "QA_MODEL": "/m", "QA_QUERY_CACHE": "7",
           "QA_PRECISION": "fp32", "QA_EVALS_DIR": "/e", "QA_EVAL_CACHE": "/ec", "QA_EVAL_OUTPUTS": "/eo", "QA_ASK_CONCURRENCY": "3",
           "QA_RELOAD_SECONDS": "0.5", "QA_DOWNLOAD_TTL": "90", "QA_BENCH_NOOP": "1", "QA_AUTH": "ann:pa:ss", "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8000"}
    config = AppConfig.from_env(env)
    s = config.settings
    assert (s.corpus_dir, s.index_dir, s.model, s.query_cache, s.precision) == (Path("/c"), Path("/i"), "/m", 7, "fp32")
    assert (config.evals_dir, config.eval_cache, config.ask_concurrency, config.noop_endpoint) == (
        Path("/e"), Path("/ec"), 3, True)
    assert config.reload_seconds == 0.5 and config.download_ttl == 90 and config.eval_outputs == Path("/eo")
    assert config.auth == ("ann", "pa:ss") and (config.server_name, config.server_port) == ("0.0.0.0", 8000)
    assert AppConfig.from_env({"QA_AUTH": "no-colon"}).auth is None


def test_a_shared_app_limits_the_eval_outputs_it_opens():
    assert not AppConfig().shared and AppConfig().eval_outputs_limit is None  # loopback, no password
    for env in ({"QA_AUTH": "ann:pw"}, {"GRADIO_SERVER_NAME": "0.0.0.0"}):
        config = AppConfig.from_env(env)
        assert config.shared and config.eval_outputs_limit == Path("eval-out")


def test_the_lock_installs_from_any_index():
    """A local version label (torch==2.13.0+cpu) exists only in this machine's wheel folder; the lock pins
    public versions (`make lock` strips the labels)."""
    lock = (Path(__file__).resolve().parents[1] / "requirements.lock").read_text(encoding="utf-8")
    pins = [line for line in lock.splitlines() if "==" in line and not line.lstrip().startswith("#")]
    assert any(line.startswith("torch==") for line in pins)
    assert [line for line in pins if "+" in line.split("==", 1)[1]] == []


def test_the_reviews_tab_is_for_a_signed_in_user_or_this_machine_only():
    from qa.serving import EngineLoader
    from qa.ui import build_demo

    assert AppConfig().reviews_editable  # loopback, no password
    assert AppConfig(server_name="0.0.0.0", auth=("team", "secret")).reviews_editable
    assert not AppConfig(server_name="0.0.0.0").reviews_editable  # shared on a network without a password

    def elem_ids(demo) -> set:
        return {c.get("props", {}).get("elem_id") for c in demo.get_config_file()["components"]}

    loader = EngineLoader(None, opener=lambda _: None)
    assert "qa-reviews-files" in elem_ids(build_demo(loader, reviews_tab=True))
    assert "qa-reviews-files" not in elem_ids(build_demo(loader, reviews_tab=False))
