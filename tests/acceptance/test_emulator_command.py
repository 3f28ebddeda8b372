"""`sftriggerd emulator` from the installed console script: serves an org you can log in to."""

import json
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import grpc

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from tests.acceptance.cli import free_port, sftriggerd_command
from tests.acceptance.test_run_lifecycle import wait_for


def test_emulator_serves_logins_and_keeps_state(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*sftriggerd_command(), "emulator", "--port", str(port), "--state", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/_emulator/stats")
        form = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "username": "admin@emulator.local",
                "password": "emulator",
            }
        ).encode()
        with urllib.request.urlopen(f"{base}/services/oauth2/token", data=form) as response:
            token = json.loads(response.read())
        assert token["token_type"] == "Bearer" and "expires_in" not in token
        assert token["instance_url"] == base
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=15)
    assert f"emulator listening on http://127.0.0.1:{port}" in stdout
    assert any(tmp_path.iterdir())


def test_emulator_serves_the_pubsub_api_on_its_own_port(tmp_path: Path) -> None:
    port, pubsub_port = free_port(), free_port()
    command = [*sftriggerd_command(), "emulator", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--pubsub-port", str(pubsub_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/_emulator/stats")
        form = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "username": "admin@emulator.local",
                "password": "emulator",
            }
        ).encode()
        with urllib.request.urlopen(f"{base}/services/oauth2/token", data=form) as response:
            token = json.loads(response.read())
        with grpc.insecure_channel(f"127.0.0.1:{pubsub_port}") as channel:
            get_topic = channel.unary_unary(
                "/eventbus.v1.PubSub/GetTopic",
                request_serializer=pb.TopicRequest.SerializeToString,
                response_deserializer=pb.TopicInfo.FromString,
            )
            metadata = (
                ("accesstoken", token["access_token"]),
                ("instanceurl", token["instance_url"]),
                ("tenantid", token["id"].split("/")[-2]),
            )
            info = get_topic(pb.TopicRequest(topic_name="/data/ChangeEvents"), metadata=metadata)
        assert info.can_subscribe
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=15)
    assert f"pubsub listening on 127.0.0.1:{pubsub_port}" in stdout
