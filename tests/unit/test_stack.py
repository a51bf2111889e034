import socket

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
