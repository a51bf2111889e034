import json
import socket
import sys

import pytest

from infra.local import stack


def test_a_port_in_use_names_the_variable_to_change():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(stack.StackError, match=f"port {port} \\(api\\).*YD_API_PORT"):
            stack.check_ports_free({"api": port})


def test_ports_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("YD_GCS_PORT", "19023")
    assert stack.configured_ports()["gcs"] == 19023
    assert stack.configured_ports()["pubsub"] == stack.PORT_DEFAULTS["pubsub"]


def test_missing_emulators_name_the_debian_packages(monkeypatch):
    monkeypatch.setattr(stack.shutil, "which", lambda tool: None)
    with pytest.raises(stack.StackError, match="google-cloud-cli-pubsub-emulator"):
        stack.check_prerequisites()


def test_stack_env_has_what_clients_need(tmp_path):
    env = stack.Stack(state_dir=tmp_path, ports=stack.PORT_DEFAULTS).env()
    assert {"GOOGLE_CLOUD_PROJECT", "DATA_BUCKET", "STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
            "FIRESTORE_EMULATOR_HOST", "GCS_EVENTS_TOPIC", "API_URL", "API_TOKEN"} <= set(env)


def test_every_function_of_the_settings_is_served_from_its_folder_on_a_port_of_its_own():
    functions = json.loads(stack.SETTINGS.read_text())["functions"]
    ports = stack.default_ports()
    assert set(functions) <= set(ports) and len(set(ports.values())) == len(ports)
    for key, function in functions.items():
        command = stack.function_command(key, ports[key])
        assert f"--source={stack.REPO / 'functions' / key / 'main.py'}" in command
        assert f"--target={function['entry_point']}" in command and f"--port={ports[key]}" in command
        assert f"--signature-type={'cloudevent' if function['topic'] else 'http'}" in command
    pushed = {function["subscription"]: key for key, function in functions.items() if function["topic"]}
    # the emulator pushes every topic-fed function's subscription but ingest's, which the push pump pushes with
    # many requests in flight (the emulator's push sends two at a time)
    assert {subscription: server for subscription, server in stack.PUSH_SUBSCRIPTIONS.values()} == {
        subscription: key for subscription, key in pushed.items() if key not in stack.PUMPED}
    assert set(stack.PUMPED) == {"ingest"} and pushed[stack.INGEST_SUBSCRIPTION] == "ingest"


def test_make_up_keeps_its_documented_ports_and_a_new_function_takes_the_next_one(monkeypatch):
    assert {key: stack.PORT_DEFAULTS[key] for key in ("api", "ingest_status", "train", "progress", "predict",
                                                       "watch", "dataset_jobs", "export", "imports", "ingest")} == {
        "api": 8090, "ingest_status": 8091, "train": 8092, "progress": 8093, "predict": 8094, "watch": 8095,
        "dataset_jobs": 8096, "export": 8097, "imports": 8098, "ingest": 8099}  # docs/local-stack.md
    monkeypatch.setattr(stack, "FUNCTIONS", {**stack.FUNCTIONS, "thumbs": {"entry_point": "thumb", "topic": None}})
    assert stack.default_ports()["thumbs"] == 8100
    assert "--target=thumb" in stack.function_command("thumbs", 8100)


def test_a_new_stack_begins_each_log_afresh_and_a_restarted_part_keeps_its_earlier_lines(tmp_path):
    (tmp_path / "part.log").write_text("a line of the stack before\n")
    made = stack.Stack(state_dir=tmp_path, ports=stack.PORT_DEFAULTS)
    for word in ("first", "again"):
        stack._spawn(made, "part", [sys.executable, "-c", f"print({word!r})"])
        made.processes["part"].wait(timeout=30)
    assert (tmp_path / "part.log").read_text().split() == ["first", "again"]
