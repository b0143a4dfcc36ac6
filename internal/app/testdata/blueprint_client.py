#!/usr/bin/env python3
"""The blueprint's client flows against a Flywheel server.

Written for Flywheel's tests after the blueprint's notebook, its
job_monitor_helper.monitor_job and the API examples of its docs: create a
job, poll it to completion building the notebook's results table, get and
list jobs, cancel, delete, and the error answers. Every timestamp is parsed
with datetime.fromisoformat under Python 3.10's rules (the oldest Python the
blueprint supports): on a newer Python those rules are checked first with a
strict pattern of what 3.10 accepts, since a newer fromisoformat is more
lenient ("Z", any number of fractional digits).

Usage: blueprint_client.py BASE_URL WORKLOAD_ID SLOW_WORKLOAD_ID CLIENT_ID
Prints one line per step and exits non-zero on the first failure.
"""

import re
import sys
import time
from datetime import datetime, timezone

import requests

# Python 3.10's datetime.fromisoformat: YYYY-MM-DD[Thh:mm[:ss[.fff[fff]]]]
# with an optional +hh:mm[:ss[.ffffff]] offset; no "Z", and only 3 or 6
# fractional digits.
PY310_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:.\d{2}(?::\d{2}(?::\d{2}(?:\.(?:\d{3}|\d{6}))?)?)?"
    r"(?:[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d{6})?)?)?)?$"
)

TERMINAL = ("completed", "failed", "cancelled")


def fromisoformat(value):
    """datetime.fromisoformat as Python 3.10 has it."""
    if sys.version_info >= (3, 11) and not PY310_ISO.match(value):
        raise ValueError(f"Invalid isoformat string: {value!r}")
    return datetime.fromisoformat(value)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def parse_times(obj, path="$"):
    """Parses every *_at value of obj; returns how many there were."""
    n = 0
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.endswith("_at") and v is not None:
                t = fromisoformat(v)
                check(t.tzinfo is not None and t.utcoffset().total_seconds() == 0, f"{path}.{k} is not UTC: {v}")
                n += 1
            else:
                n += parse_times(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            n += parse_times(v, f"{path}[{i}]")
    return n


def step(msg):
    print(msg, flush=True)


def monitor_job(api_base_url, job_id, timeout=120):
    """Polls a job as the notebook's monitor_job does, building its table."""
    deadline = time.time() + timeout
    while True:
        response = requests.get(f"{api_base_url}/api/jobs/{job_id}")
        response.raise_for_status()
        job_data = response.json()
        parse_times(job_data)
        rows = []
        for nim in job_data["nims"]:
            for e in nim["evaluations"]:
                started = fromisoformat(e["started_at"])
                finished = fromisoformat(e["finished_at"]) if e["finished_at"] else None
                rows.append({
                    "Model": nim["model_name"],
                    "Eval Type": e["eval_type"].upper(),
                    "Percent Done": e["progress"],
                    "Runtime": str((finished or datetime.now(timezone.utc)) - started),
                    "Function name": e["scores"].get("function_name"),
                    "Function name + args": e["scores"].get("function_name_and_args_accuracy"),
                })
            for c in nim["customizations"]:
                fromisoformat(c["started_at"])
        if job_data["status"] in TERMINAL:
            return job_data, rows
        check(time.time() < deadline, f"job {job_id} not finished after {timeout}s: {job_data['status']}")
        time.sleep(0.2)


def main():
    api, workload, slow_workload, client = sys.argv[1:5]

    # Create, as the notebook does.
    response = requests.post(f"{api}/api/jobs", json={"workload_id": workload, "client_id": client})
    response.raise_for_status()
    created = response.json()
    check(created["status"] == "queued" and created["message"] == "NIM workflow started", f"create: {created}")
    job_id = created["id"]
    step(f"created {job_id}")

    job, rows = monitor_job(api, job_id)
    check(job["status"] == "completed", f"job ended {job['status']}: {job.get('error')}")
    check(len(rows) > 0, "no evaluations")
    for r in rows:
        check(r["Percent Done"] == 100, f"unfinished evaluation: {r}")
    step(f"completed with {len(rows)} evaluations: {rows}")

    # Get: every timestamp parses; the run's own are UTC and ordered.
    response = requests.get(f"{api}/api/jobs/{job_id}")
    response.raise_for_status()
    detail = response.json()
    n = parse_times(detail)
    check(fromisoformat(detail["started_at"]) <= fromisoformat(detail["finished_at"]), "finished before started")
    step(f"get: {n} timestamps parsed")

    # List.
    response = requests.get(f"{api}/api/jobs")
    response.raise_for_status()
    jobs = response.json()["jobs"]
    check(job_id in [j["id"] for j in jobs], "created job not listed")
    n = parse_times(jobs)
    step(f"list: {len(jobs)} jobs, {n} timestamps parsed")

    # Cancel a finished job: 400, the blueprint's detail.
    response = requests.post(f"{api}/api/jobs/{job_id}/cancel")
    check(response.status_code == 400, f"cancel finished: {response.status_code} {response.text}")
    check(response.json()["detail"] == "Cannot cancel a job that has already finished.", response.text)
    step("cancel of a finished job: 400")

    # A job that is still running: delete refused, cancel, cancel again.
    response = requests.post(f"{api}/api/jobs", json={"workload_id": slow_workload, "client_id": client})
    response.raise_for_status()
    slow_id = response.json()["id"]
    response = requests.delete(f"{api}/api/jobs/{slow_id}")
    check(response.status_code == 400, f"delete running: {response.status_code} {response.text}")
    check(response.json()["detail"] == "Cannot delete a running job. Please cancel the job first.", response.text)
    step("delete of a running job: 400")
    response = requests.post(f"{api}/api/jobs/{slow_id}/cancel")
    response.raise_for_status()
    check(response.json() == {"id": slow_id, "message": "Job cancellation initiated successfully."}, response.text)
    step("cancel: 200")
    response = requests.post(f"{api}/api/jobs/{slow_id}/cancel")
    check(response.status_code == 400, f"second cancel: {response.status_code} {response.text}")
    detail = response.json()["detail"]
    check(detail.startswith("Cannot cancel a job that has already finished.") and "already cancelled" in detail, detail)
    step(f"second cancel: 400 {detail!r}")
    job, _ = monitor_job(api, slow_id)
    check(job["status"] == "cancelled", f"cancelled job is {job['status']}")
    check(job["finished_at"] is not None, "cancelled job has no finished_at")

    # Delete, then it is gone.
    for jid in (slow_id, job_id):
        response = requests.delete(f"{api}/api/jobs/{jid}")
        response.raise_for_status()
        check(response.json() == {"id": jid, "message": "Job deletion started. Resources will be cleaned up in the background."}, response.text)
        deadline = time.time() + 60
        while requests.get(f"{api}/api/jobs/{jid}").status_code != 404:
            check(time.time() < deadline, f"{jid} still there after delete")
            time.sleep(0.2)
        response = requests.get(f"{api}/api/jobs/{jid}")
        check(response.json() == {"detail": "Job not found"}, response.text)
        response = requests.delete(f"{api}/api/jobs/{jid}")
        check(response.status_code == 404 and response.json() == {"detail": f"Job with ID {jid} not found"}, response.text)
    step("deleted both: 404")

    # Errors.
    response = requests.post(f"{api}/api/jobs", json={"client_id": client})
    check(response.status_code == 422, f"missing workload_id: {response.status_code}")
    err = response.json()["detail"][0]
    check(err["loc"] == ["body", "workload_id"] and err["type"] == "missing" and err["msg"] == "Field required", err)
    check(err["input"] == {"client_id": client}, f"pydantic 2's input: {err}")
    response = requests.post(f"{api}/api/jobs", json={"workload_id": "w" * 300, "client_id": client})
    check(response.status_code == 422, f"long workload_id: {response.status_code}")
    err = response.json()["detail"][0]
    check(err["type"] == "string_too_long" and err["ctx"] == {"max_length": 255}, err)
    response = requests.get(f"{api}/api/jobs/not-an-id")
    check(response.status_code == 400 and response.json()["detail"] == "Invalid job_id format", response.text)
    response = requests.post(f"{api}/api/jobs/{'0' * 24}/cancel")
    check(response.status_code == 404 and response.json()["detail"] == f"Job with ID {'0' * 24} not found", response.text)
    step("errors: 422 with input and ctx, 400, 404")

    # The timestamp rules themselves: what 3.10 refuses is refused here.
    for bad in ("2025-06-03T12:34:56.123456789+00:00", "2025-06-03T12:34:56.123456Z"):
        try:
            fromisoformat(bad)
        except ValueError:
            continue
        raise AssertionError(f"3.10's rules accept {bad}")
    step(f"python {sys.version.split()[0]}, requests {requests.__version__}: all flows passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # one line, not a traceback, for the Go test's message
        print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
