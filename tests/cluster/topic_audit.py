"""Read a whole topic; print {"partitions", "records", "ids", "md5"} of its tickets' ids (one JSON line).

Only the records that the contract accepts count (core.contract.decode_ticket, installed in
the image with the producer): a rejected record's ticket_id is not to be found in `tickets`.

Run inside the cluster, in a pod of the producer image (it has confluent-kafka):
    python -c "$(cat topic_audit.py)" BOOTSTRAP TOPIC
The md5 is over the sorted distinct ticket ids joined by commas, as the cluster test computes
it over the `tickets` table, so the two sets compare exactly.
"""

import hashlib
import json
import sys

from confluent_kafka import Consumer, TopicPartition

from core.contract import decode_ticket

bootstrap, topic = sys.argv[1], sys.argv[2]
consumer = Consumer(
    {"bootstrap.servers": bootstrap, "group.id": "ticket-pipeline-audit", "enable.auto.commit": False}
)
ends = {}
partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
for partition in partitions:
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
    if high > low:
        ends[partition] = high
consumer.assign([TopicPartition(topic, p, 0) for p in ends])
ids, records = set(), 0
while ends:
    message = consumer.poll(30)
    if message is None:
        sys.exit(f"no record for 30 s with {ends} left to read")
    if message.error():
        continue
    records += 1
    ticket, _reason = decode_ticket(message.value())
    if ticket is not None:
        ids.add(ticket["ticket_id"])
    if message.offset() + 1 >= ends.get(message.partition(), 0):
        ends.pop(message.partition(), None)
consumer.close()
digest = hashlib.md5(",".join(sorted(ids)).encode()).hexdigest()
print(json.dumps({"partitions": len(partitions), "records": records, "ids": len(ids), "md5": digest}))
