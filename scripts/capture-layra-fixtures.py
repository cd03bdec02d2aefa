"""Runs LAYRA's own backend code (its endpoints and repository methods, at the pinned commit, with its
pinned packages) against the local stack and writes what it stored as test fixtures. Started by
scripts/capture-layra-fixtures.ts, which starts the stack, unpacks LAYRA's backend and sets the
environment LAYRA's settings read (docs/layra-contract.md, "Captured fixtures").

    python capture-layra-fixtures.py <LAYRA backend folder> <output folder>

Three LAYRA modules are replaced before import: app.db.milvus (its import connects to Milvus),
app.workflow.workflow_engine (it needs Docker and MCP packages) and the app.api package's __init__ (it
imports every router, the workflow one included). None is on a path whose bytes are captured: the Milvus
rows are not part of the fixture set, no workflow run is executed, and the endpoints used are imported
one by one.
"""

import asyncio
import base64
import json
import os
import sys
import types
import uuid
from io import BytesIO

backend, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, backend)


class RecordingMilvus:
    """Stands in for LAYRA's MilvusManager: the rows are embeddings only, outside the fixture set."""

    def __init__(self):
        self.collections = set()

    def create_collection(self, name):
        self.collections.add(name)

    def check_collection(self, name):
        return name in self.collections

    def insert(self, data, collection_name):
        self.collections.add(collection_name)


milvus_module = types.ModuleType("app.db.milvus")
milvus_module.MilvusManager = RecordingMilvus
milvus_module.milvus_client = RecordingMilvus()
sys.modules["app.db.milvus"] = milvus_module
engine_module = types.ModuleType("app.workflow.workflow_engine")
engine_module.WorkflowEngine = None
sys.modules["app.workflow.workflow_engine"] = engine_module
api_package = types.ModuleType("app.api")
api_package.__path__ = [os.path.join(backend, "app", "api")]
sys.modules["app.api"] = api_package

from aiokafka import AIOKafkaConsumer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from bson import json_util  # noqa: E402
from bson.json_util import CANONICAL_JSON_OPTIONS  # noqa: E402
from fastapi import UploadFile  # noqa: E402
from motor.motor_asyncio import AsyncIOMotorClient  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402

import app.rag.utils as rag_utils  # noqa: E402
from app.api.endpoints import base as base_endpoints  # noqa: E402
from app.api.endpoints import chat as chat_endpoints  # noqa: E402
from app.api.endpoints import chatflow as chatflow_endpoints  # noqa: E402
from app.api.endpoints import config as config_endpoints  # noqa: E402
from app.core.config import settings  # noqa: E402
from app.db.miniodb import async_minio_manager  # noqa: E402
from app.db.mongo import mongodb  # noqa: E402
from app.db.redis import redis  # noqa: E402
from app.models.chatflow import ChatflowCreate  # noqa: E402
from app.models.conversation import ConversationCreate  # noqa: E402
from app.models.knowledge_base import KnowledgeBaseCreate  # noqa: E402
from app.models.model_config import ModelCreate  # noqa: E402
from app.models.user import User  # noqa: E402
from app.models.workflow import WorkflowCreate  # noqa: E402
from app.utils.kafka_consumer import KafkaConsumerManager  # noqa: E402
from app.utils.kafka_producer import kafka_producer_manager  # noqa: E402

USERNAME = "layrauser"
user = User(username=USERNAME)


async def one_vector_per_page(images_buffer, filename):
    """The model server's answer only feeds Milvus (stood in above), so any vectors do."""
    return [[[0.0] * 128] for _ in images_buffer]


rag_utils.generate_embeddings = one_vector_per_page


def write(name, value):
    with open(os.path.join(out, name), "w") as f:
        # Canonical extended JSON keeps every BSON type: $date, $numberInt, $numberLong, $numberDouble, $oid.
        f.write(json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS, indent=2, ensure_ascii=False))
        f.write("\n")


def upload(name, content_type, data):
    return UploadFile(file=BytesIO(data), filename=name, headers=Headers({"content-type": content_type}))


async def raw(collection, query):
    doc = await mongodb.db[collection].find_one(query)
    assert doc is not None, f"{collection} {query}"
    return doc


async def task_hash(task_id):
    connection = await redis.get_task_connection()
    key = f"task:{task_id}"
    return {"key": key, "db": settings.redis_task_db, "hash": await connection.hgetall(key), "ttl": await connection.ttl(key)}


async def next_record(consumer):
    batch = await consumer.getmany(timeout_ms=30000, max_records=1)
    records = [record for part in batch.values() for record in part]
    assert records, "LAYRA's upload queued no Kafka message"
    return records[0]


def record_json(record):
    return {
        "topic": record.topic,
        "key": None if record.key is None else base64.b64encode(record.key).decode(),
        "value": base64.b64encode(record.value).decode(),
        "headers": [[name, base64.b64encode(value).decode()] for name, value in record.headers],
    }


async def main():
    mongodb.client = AsyncIOMotorClient(os.environ["CAPTURE_MONGODB_URL"])
    mongodb.db = mongodb.client[settings.mongodb_db]
    await mongodb._create_indexes()
    await async_minio_manager.create_bucket()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_broker_url)
    await admin.start()
    await admin.create_topics([NewTopic(settings.kafka_topic, num_partitions=1, replication_factor=1)])
    await admin.close()
    consumer = AIOKafkaConsumer(
        settings.kafka_topic, bootstrap_servers=settings.kafka_broker_url, auto_offset_reset="earliest"
    )
    await consumer.start()
    worker = KafkaConsumerManager()
    with open(os.path.join(out, "upload.pdf"), "rb") as f:
        pdf = f.read()
    with open(os.path.join(out, "chat-upload.png"), "rb") as f:
        png = f.read()

    # Registration's default model (auth.py's arguments), then POST /config/{username}.
    default_model_id = f"{USERNAME}_{uuid.uuid4()}"
    await mongodb.create_model_config(
        username=USERNAME,
        selected_model=default_model_id,
        model_id=default_model_id,
        model_name="qwen2.5-vl-32b-instruct",
        model_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        api_key="sk-default-xxx",
        base_used=[],
        system_prompt="You are a helpful assistant.",
        temperature=-1,
        max_length=-1,
        top_P=-1,
        top_K=-1,
        score_threshold=-1,
    )

    # A knowledge base (POST /base/knowledge_base), one PDF uploaded to it, and LAYRA's consumer ingesting it.
    await base_endpoints.create_knowledge_base(
        KnowledgeBaseCreate(username=USERNAME, knowledge_base_name="Quarterly reports"), db=mongodb, current_user=user
    )
    kb = await raw("knowledge_bases", {"username": USERNAME, "is_delete": False})
    kb_id = kb["knowledge_base_id"]
    uploaded = await base_endpoints.upload_multiple_files(
        files=[upload("report.pdf", "application/pdf", pdf)], knowledge_db_id=kb_id, current_user=user
    )
    after_upload = await task_hash(uploaded["task_id"])
    record = await next_record(consumer)
    await worker.process_message(record)
    file_id = uploaded["files"][0]["id"]
    ingested_file = await raw("files", {"file_id": file_id})
    write(
        "knowledge-base.json",
        {
            "created": kb,
            "afterIngestion": await raw("knowledge_bases", {"knowledge_base_id": kb_id}),
            "file": ingested_file,
        },
    )
    write(
        "upload-task.json",
        {
            "task": {"afterUpload": after_upload, "afterIngestion": await task_hash(uploaded["task_id"])},
            "message": record_json(record),
        },
    )

    # A second model that uses the base (a body as LAYRA's browser sends it: JSON numbers through ModelCreate).
    added = await config_endpoints.add_model_config(
        USERNAME,
        ModelCreate.model_validate_json(
            json.dumps(
                {
                    "model_name": "qwen-max",
                    "model_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
                    "api_key": "sk-captured-fixture",
                    "base_used": [{"name": "Quarterly reports", "baseId": kb_id}],
                    "system_prompt": "Answer from the reports.",
                    "temperature": 0.7,
                    "max_length": 4096,
                    "top_P": 1,
                    "top_K": 3,
                    "score_threshold": 10,
                }
            )
        ),
        db=mongodb,
        current_user=user,
    )
    await mongodb.update_selected_model(USERNAME, added["model_id"])
    model_config = await raw("model_config", {"username": USERNAME})
    write("model-config.json", model_config)

    # A conversation: the browser's create, a root turn citing the ingested page as LLMService builds it,
    # then a file uploaded into the chat (a temporary base) and an aborted answer under the first turn.
    selected = next(m for m in model_config["models"] if m["model_id"] == added["model_id"])
    conversation_id = f"{USERNAME}_{uuid.uuid4()}"
    await chat_endpoints.create_conversation(
        ConversationCreate(
            conversation_id=conversation_id,
            username=USERNAME,
            conversation_name="About the reports",
            # The selected model as the browser sends it back: parsed by JavaScript, so 1.0 travels as 1.
            chat_model_config=json.loads(
                json.dumps(
                    {
                        k: int(v) if isinstance(v, float) and v.is_integer() else v
                        for k, v in selected.items()
                        if k != "model_id"
                    }
                )
            ),
        ),
        db=mongodb,
        current_user=user,
    )
    page = ingested_file["images"][0]
    # get_file_and_image_info's answer, built from the file document: its positional projection ("images.$")
    # is one the local FerretDB refuses.
    info = {
        "knowledge_db_id": ingested_file["knowledge_db_id"],
        "file_name": ingested_file["filename"],
        "file_minio_url": ingested_file["minio_url"],
        "image_minio_filename": page["minio_filename"],
        "image_minio_url": page["minio_url"],
    }
    first_turn = str(uuid.uuid4())
    await mongodb.add_turn(
        conversation_id=conversation_id,
        message_id=first_turn,
        parent_message_id="",
        user_message={
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": info["image_minio_filename"]},
                {"type": "text", "text": "What grew last quarter?"},
            ],
        },
        temp_db="",
        ai_message={"role": "assistant", "content": "<think>Page 1 says so.</think>Revenue grew."},
        file_used=[
            {
                "score": 17.25,
                "knowledge_db_id": info["knowledge_db_id"],
                "file_name": info["file_name"],
                "image_url": info["image_minio_url"],
                "file_url": info["file_minio_url"],
            }
        ],
        status="completed",
        total_token=1234,
        completion_tokens=34,
        prompt_tokens=1200,
    )
    chat_upload = await chat_endpoints.upload_multiple_files(
        files=[upload("photo.png", "image/png", png)],
        username=USERNAME,
        conversation_id=conversation_id,
        db=mongodb,
        current_user=user,
    )
    await worker.process_message(await next_record(consumer))
    await mongodb.add_turn(
        conversation_id=conversation_id,
        message_id=str(uuid.uuid4()),
        parent_message_id=first_turn,
        user_message={"role": "user", "content": [{"type": "text", "text": "And in the photo?"}]},
        temp_db=chat_upload["knowledge_db_id"],
        ai_message={"role": "assistant", "content": "The photo shows ⚠️ Abort By User"},
        file_used=[],
        status="aborted",
        total_token=0,
        completion_tokens=0,
        prompt_tokens=0,
    )
    write(
        "conversation.json",
        {
            "conversation": await raw("conversations", {"conversation_id": conversation_id}),
            "temporaryBase": await raw("knowledge_bases", {"knowledge_base_id": chat_upload["knowledge_db_id"]}),
        },
    )

    # A workflow as the editor saves it (POST /workflow/workflows's arguments) and a chatflow with one turn.
    workflow = WorkflowCreate.model_validate_json(
        json.dumps(
            {
                "username": USERNAME,
                "workflow_id": f"{USERNAME}_{uuid.uuid4()}",
                "workflow_name": "Summarise",
                "workflow_config": {"docker_image_use": "python-sandbox:latest"},
                "start_node": "node_start",
                "global_variables": {"limit": "3", "title": "'Q3'"},
                "nodes": [
                    {"id": "node_start", "type": "start", "position": {"x": 0, "y": 0}, "data": {"name": "Start"}},
                    {
                        "id": "node_code_5f0c",
                        "type": "code",
                        "position": {"x": 240.5, "y": 0},
                        "data": {"name": "Count", "code": "print(limit)"},
                    },
                ],
                "edges": [{"id": "edge_1", "source": "node_start", "target": "node_code_5f0c"}],
            }
        )
    )
    await mongodb.update_workflow(
        workflow_id=workflow.workflow_id,
        username=workflow.username,
        workflow_name=workflow.workflow_name,
        workflow_config=workflow.workflow_config,
        start_node=workflow.start_node,
        global_variables=workflow.global_variables,
        nodes=workflow.nodes,
        edges=workflow.edges,
    )
    chatflow_id = f"{USERNAME}_{uuid.uuid4()}"
    await chatflow_endpoints.create_chatflow(
        ChatflowCreate(
            chatflow_id=chatflow_id, username=USERNAME, chatflow_name="First run", workflow_id=workflow.workflow_id
        ),
        db=mongodb,
        current_user=user,
    )
    await mongodb.chatflow_add_turn(
        chatflow_id=chatflow_id,
        message_id=str(uuid.uuid4()),
        parent_message_id="",
        user_message={"role": "user", "content": [{"type": "text", "text": "Run it"}]},
        temp_db="",
        ai_message={"role": "assistant", "content": "3"},
        file_used=[],
        status="",
        total_token=10,
        completion_tokens=1,
        prompt_tokens=9,
    )
    write(
        "workflow.json",
        {
            "workflow": await raw("workflows", {"workflow_id": workflow.workflow_id}),
            "chatflow": await raw("chatflows", {"chatflow_id": chatflow_id}),
        },
    )

    await consumer.stop()
    await kafka_producer_manager.stop()
    await redis.close()
    mongodb.client.close()


asyncio.run(main())
