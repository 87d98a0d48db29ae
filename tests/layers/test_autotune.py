"""The autotuner measures each PSA problem once per machine, caches the choice on disk, and never
lets a bad cache, a read-only home or a concurrent writer change a result."""
import json
import os
import stat
import subprocess
import sys

import pytest
import torch
from common import relative_error

from epsanet.layers import PSAModule, ReferencePSAModule
from epsanet.layers import _autotune as autotune
from epsanet.layers.psa import branch_conv_candidates


@pytest.fixture
def tuning(monkeypatch, tmp_path):
    """Autotuning on, with a cache folder of its own and nothing remembered in memory, on a machine
    that counts as quiet whatever else the test run is doing."""
    monkeypatch.setattr(autotune, "busy_load", lambda: None)
    monkeypatch.setenv("EPSANET_AUTOTUNE", "1")
    monkeypatch.setenv("EPSANET_CACHE_DIR", str(tmp_path / "cache"))
    autotune.clear_memory()
    yield tmp_path / "cache"
    autotune.clear_memory()


@pytest.fixture
def no_timing(monkeypatch):
    """Fail the test if anything is measured."""
    def refuse(*args, **kwargs):
        raise AssertionError("a plan was measured")
    monkeypatch.setattr(autotune, "time_candidates", refuse)


def small_psa():
    torch.manual_seed(0)
    return PSAModule(32, groups=(1, 2, 4, 8), se_reduction=4).eval()


def run(module, x=None):
    with torch.no_grad():
        return module(torch.randn(2, 32, 8, 8) if x is None else x)


def test_a_measured_plan_is_one_of_the_candidates_and_gives_the_official_output(tuning):
    psa = small_psa()
    reference = ReferencePSAModule(32, groups=(1, 2, 4, 8), se_reduction=4).eval()
    reference.load_state_dict(psa.state_dict())
    x = torch.randn(2, 32, 8, 8)
    assert relative_error(run(psa, x), run(reference, x)) < 1e-5
    (entry,) = json.loads(autotune.cache_path().read_text())["plans"].values()
    assert isinstance(entry["channels_last"], bool)
    for (method, groups_to_run), groups in zip(entry["branches"], psa.groups):
        assert (method, groups_to_run) in branch_conv_candidates(32 // groups, 8 // groups, groups)


def test_the_cache_file_names_and_records_the_machine(tuning):
    run(small_psa())
    data = json.loads(autotune.cache_path().read_text())
    assert autotune.cache_path().parent == tuning
    assert data["machine"] == autotune.machine_key("cpu")
    assert data["machine"]["torch"] == torch.__version__
    assert data["machine"]["aten_capability"] == torch.backends.cpu.get_cpu_capability()
    (key,) = data["plans"]
    assert f"threads={torch.get_num_threads()}" in key and key.startswith("psa infer float32 nchw ")
    assert "batch=2 in=32x8x8" in key


def test_a_second_process_reuses_the_plan_without_measuring(tuning, monkeypatch):
    run(small_psa())
    autotune.clear_memory()  # as a new process: only the file remains

    def refuse(*args, **kwargs):
        raise AssertionError("a plan was measured")
    monkeypatch.setattr(autotune, "time_candidates", refuse)
    run(small_psa())


def count_measurements(monkeypatch) -> list:
    measured = []
    time_candidates = autotune.time_candidates

    def counting(*args, **kwargs):
        measured.append(1)
        return time_candidates(*args, **kwargs)
    monkeypatch.setattr(autotune, "time_candidates", counting)
    return measured


def test_a_plan_measured_under_load_is_marked_and_measured_again_once_the_machine_is_quiet(tuning, monkeypatch):
    monkeypatch.setattr(autotune, "busy_load", lambda: 5.25)
    run(small_psa())
    (entry,) = json.loads(autotune.cache_path().read_text())["plans"].values()
    assert entry["measured_under_load"] == 5.25
    autotune.clear_memory()

    monkeypatch.setattr(autotune, "busy_load", lambda: None)
    measured = count_measurements(monkeypatch)
    psa = small_psa()
    run(psa)
    assert measured
    once = len(measured)
    run(psa)
    run(small_psa())
    assert len(measured) == once
    (entry,) = json.loads(autotune.cache_path().read_text())["plans"].values()
    assert "measured_under_load" not in entry


def test_a_plan_measured_under_load_is_kept_while_the_machine_stays_busy(tuning, monkeypatch):
    monkeypatch.setattr(autotune, "busy_load", lambda: 5.25)
    run(small_psa())
    autotune.clear_memory()
    measured = count_measurements(monkeypatch)
    run(small_psa())
    assert not measured


@pytest.mark.parametrize("load_average, expected", [(3.5, 3.5), (2.0, None), (0.1, None)])
def test_busy_load_is_the_load_average_when_it_exceeds_the_usable_cpus(monkeypatch, load_average, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (load_average, 0.0, 0.0))
    assert autotune.busy_load() == expected


def test_busy_load_is_none_without_a_load_average(monkeypatch):
    def unavailable():
        raise OSError("no load average")
    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert autotune.busy_load() is None


def test_training_inputs_are_a_separate_problem(tuning):
    psa = small_psa().train()
    psa(torch.randn(2, 32, 8, 8, requires_grad=True)).sum().backward()
    run(psa.eval())
    keys = sorted(json.loads(autotune.cache_path().read_text())["plans"])
    assert [key.split()[1] for key in keys] == ["infer", "train"]


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "plans": []}', '["a list"]', ""])
def test_a_corrupt_cache_is_ignored_with_a_warning_and_rebuilt(tuning, content):
    tuning.mkdir()
    autotune.cache_path().write_text(content)
    with pytest.warns(UserWarning, match="ignoring the corrupt cache"):
        run(small_psa())
    assert len(json.loads(autotune.cache_path().read_text())["plans"]) == 1


def test_a_cache_from_another_machine_is_ignored_with_a_warning_and_rebuilt(tuning):
    tuning.mkdir()
    foreign = {"format": 1, "machine": {**autotune.machine_key("cpu"), "cpu": "another CPU"},
               "plans": {"anything": {"channels_last": True, "branches": []}}}
    autotune.cache_path().write_text(json.dumps(foreign))
    with pytest.warns(UserWarning, match="measured on another machine"):
        run(small_psa())
    data = json.loads(autotune.cache_path().read_text())
    assert data["machine"] == autotune.machine_key("cpu") and "anything" not in data["plans"]


def test_a_cached_entry_that_is_not_a_valid_plan_is_measured_again(tuning):
    psa = small_psa()
    run(psa)
    data = json.loads(autotune.cache_path().read_text())
    (key,) = data["plans"]
    data["plans"][key] = {"channels_last": False, "branches": [["native", 3]] * 4}  # 3 does not divide the groups
    autotune.cache_path().write_text(json.dumps(data))
    autotune.clear_memory()
    run(psa)
    assert json.loads(autotune.cache_path().read_text())["plans"][key]["branches"] != [["native", 3]] * 4


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_runs_without_caching(tuning):
    tuning.mkdir()
    tuning.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.warns(UserWarning, match="cannot write the cache"):
            out = run(small_psa())
        assert torch.isfinite(out).all() and not any(tuning.iterdir())
    finally:
        tuning.chmod(stat.S_IRWXU)


def test_an_unwritable_cache_location_runs_without_caching(tuning, monkeypatch, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("EPSANET_CACHE_DIR", str(blocker / "cache"))  # a folder inside a file: never writable
    with pytest.warns(UserWarning, match="cannot write the cache"):
        out = run(small_psa())
    assert torch.isfinite(out).all()


def test_the_cache_honours_the_umask(tuning):
    previous = os.umask(0o027)
    try:
        run(small_psa())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(autotune.cache_path().stat().st_mode) == 0o640


def test_autotune_off_uses_the_rule_and_writes_nothing(tuning, monkeypatch, no_timing):
    monkeypatch.setenv("EPSANET_AUTOTUNE", "0")
    run(small_psa())
    assert not tuning.exists()


def test_scripted_and_compiled_modules_use_the_rule(tuning, no_timing):
    psa = small_psa()
    x = torch.randn(2, 32, 8, 8)
    scripted = run(torch.jit.script(psa), x)
    with torch.no_grad():
        compiled = torch.compile(psa, backend="eager", fullgraph=True)(x)
    torch.testing.assert_close(compiled, scripted)
    assert not tuning.exists()


def test_the_cache_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("EPSANET_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert autotune.cache_dir() == tmp_path / "epsanet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert autotune.cache_dir() == autotune.Path.home() / ".cache" / "epsanet"


LOAD_AUTOTUNE = """
import sys
from epsanet.layers import _autotune as autotune
"""
WRITER = LOAD_AUTOTUNE + """
for i in range(40):
    autotune.store("cpu", f"{sys.argv[1]} {i}", {"channels_last": True, "branches": []})
"""


def test_concurrent_writers_never_leave_a_partial_file(tuning):
    env = dict(os.environ, EPSANET_CACHE_DIR=str(tuning))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, f"writer{n}"], env=env) for n in range(3)]
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0]
    plans = json.loads(autotune.cache_path().read_text())["plans"]
    assert {key.split()[0] for key in plans} <= {"writer0", "writer1", "writer2"} and len(plans) >= 40
    assert not [p for p in tuning.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_the_machine_key_follows_the_instruction_set_in_effect(tuning):
    code = LOAD_AUTOTUNE + "print(autotune.cache_path().name, autotune.isa_summary(), sep='|')"
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", ONEDNN_MAX_CPU_ISA="SSE41")
    capped = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    name, isa = capped.stdout.strip().split("|")
    assert name != autotune.cache_path().name
    assert "capped" in isa and "ONEDNN_MAX_CPU_ISA=SSE41" in isa
