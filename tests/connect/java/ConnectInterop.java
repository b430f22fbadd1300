// Kafka Connect's own JsonConverter and transforms, driven line by line over stdin/stdout,
// so tests/connect/test_connect_interop.py can compare Strom Connect's output with Kafka's.
// One JSON request per line, one JSON answer per line:
//   {"op":"convert","schemas":true,"json":"<envelope text>"}  -> {"json":"<Kafka's bytes as text>"}
//   {"op":"fromdata","schemas":false,"json":"<envelope with schema>"} -> same, re-encoded
//   {"op":"transform","class":"...","config":{...},"predicate":{...}?,"negate":false,
//    "topic":"t","partition":0,"timestamp":123,"key":"<envelope>","value":"<envelope>",
//    "headers":[["name","<envelope>"]]}
//   -> {"dropped":false,"topic":..,"partition":..,"timestamp":..,"key":..,"value":..,"headers":[..]}
//   {"op":"encode_metadata"|"encode_assignment", ...fields...}       -> {"hex":"..."}
//   {"op":"decode_metadata"|"decode_assignment","hex":"..."}         -> the fields
//     (the Connect group protocol: ConnectProtocol / IncrementalCooperativeConnectProtocol)
//   errors -> {"error":"<exception class>: <message>"}
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.transforms.Transformation;
import org.apache.kafka.connect.transforms.predicates.Predicate;
import org.apache.kafka.connect.runtime.distributed.ConnectProtocol;
import org.apache.kafka.connect.runtime.distributed.ExtendedAssignment;
import org.apache.kafka.connect.runtime.distributed.ExtendedWorkerState;
import org.apache.kafka.connect.runtime.distributed.IncrementalCooperativeConnectProtocol;
import org.apache.kafka.connect.util.ConnectorTaskId;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeSet;

public class ConnectInterop {
    static final ObjectMapper MAPPER = new ObjectMapper();

    static JsonConverter converter(boolean schemas, boolean isKey) {
        JsonConverter c = new JsonConverter();
        Map<String, Object> conf = new HashMap<>();
        conf.put("schemas.enable", Boolean.toString(schemas));
        c.configure(conf, isKey);
        return c;
    }

    static Map<String, String> stringMap(JsonNode node) {
        Map<String, String> out = new HashMap<>();
        if (node == null) return out;
        Iterator<Map.Entry<String, JsonNode>> it = node.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    static SchemaAndValue read(JsonConverter c, JsonNode text) {
        if (text == null || text.isNull()) return SchemaAndValue.NULL;
        return c.toConnectData("t", text.asText().getBytes(StandardCharsets.UTF_8));
    }

    static String write(JsonConverter c, org.apache.kafka.connect.data.Schema s, Object v) {
        byte[] b = c.fromConnectData("t", s, v);
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    @SuppressWarnings("unchecked")
    static ObjectNode transform(JsonNode req) throws Exception {
        JsonConverter keys = converter(true, true);
        JsonConverter values = converter(true, false);
        JsonConverter headerConv = converter(true, false);
        SchemaAndValue key = read(keys, req.get("key"));
        SchemaAndValue value = read(values, req.get("value"));
        ConnectHeaders headers = new ConnectHeaders();
        if (req.has("headers")) {
            for (JsonNode h : req.get("headers")) {
                SchemaAndValue hv = read(headerConv, h.get(1));
                headers.add(h.get(0).asText(), hv);
            }
        }
        Long ts = req.has("timestamp") && !req.get("timestamp").isNull() ? req.get("timestamp").asLong() : null;
        SinkRecord record = new SinkRecord(req.get("topic").asText(), req.get("partition").asInt(),
            key.schema(), key.value(), value.schema(), value.value(), 0L, ts,
            org.apache.kafka.common.record.TimestampType.CREATE_TIME, headers);
        if (req.has("predicate")) {
            JsonNode p = req.get("predicate");
            Predicate<SinkRecord> pred = (Predicate<SinkRecord>) Class.forName(p.get("class").asText())
                .getDeclaredConstructor().newInstance();
            pred.configure(stringMap(p.get("config")));
            boolean matched = pred.test(record);
            boolean negate = p.has("negate") && p.get("negate").asBoolean();
            if (matched == negate) return answer(record, keys, values, headerConv);
        }
        Transformation<SinkRecord> t = (Transformation<SinkRecord>) Class.forName(req.get("class").asText())
            .getDeclaredConstructor().newInstance();
        t.configure(stringMap(req.get("config")));
        SinkRecord out = t.apply(record);
        if (out == null) {
            ObjectNode dropped = MAPPER.createObjectNode();
            dropped.put("dropped", true);
            return dropped;
        }
        return answer(out, keys, values, headerConv);
    }

    static ObjectNode answer(ConnectRecord<?> out, JsonConverter keys, JsonConverter values,
                             JsonConverter headerConv) {
        ObjectNode res = MAPPER.createObjectNode();
        res.put("dropped", false);
        res.put("topic", out.topic());
        if (out.kafkaPartition() == null) res.putNull("partition"); else res.put("partition", out.kafkaPartition());
        if (out.timestamp() == null) res.putNull("timestamp"); else res.put("timestamp", out.timestamp());
        res.put("key", write(keys, out.keySchema(), out.key()));
        res.put("value", write(values, out.valueSchema(), out.value()));
        ArrayNode hs = res.putArray("headers");
        for (Header h : out.headers()) {
            ArrayNode pair = hs.addArray();
            pair.add(h.key());
            pair.add(write(headerConv, h.schema(), h.value()));
        }
        return res;
    }

    static List<String> names(JsonNode node) {
        List<String> out = new ArrayList<>();
        if (node != null) for (JsonNode n : node) out.add(n.asText());
        return out;
    }

    static List<ConnectorTaskId> taskIds(JsonNode node) {
        List<ConnectorTaskId> out = new ArrayList<>();
        if (node != null) for (JsonNode n : node) out.add(new ConnectorTaskId(n.get(0).asText(), n.get(1).asInt()));
        return out;
    }

    static ExtendedAssignment assignmentOf(JsonNode a) {
        return new ExtendedAssignment((short) a.get("version").asInt(), (short) a.get("error").asInt(),
            a.get("leader").asText(), a.get("leader_url").asText(), a.get("offset").asLong(),
            names(a.get("connectors")), taskIds(a.get("tasks")), names(a.get("revoked_connectors")),
            taskIds(a.get("revoked_tasks")), a.get("delay").asInt());
    }

    static ObjectNode assignmentJson(ConnectProtocol.Assignment a, short version) {
        ObjectNode res = MAPPER.createObjectNode();
        res.put("version", version);
        res.put("error", a.error());
        res.put("leader", a.leader());
        res.put("leader_url", a.leaderUrl());
        res.put("offset", a.offset());
        putSorted(res.putArray("connectors"), a.connectors());
        putTasks(res.putArray("tasks"), a.tasks());
        if (a instanceof ExtendedAssignment e && version >= 1) {
            putSorted(res.putArray("revoked_connectors"), e.revokedConnectors());
            putTasks(res.putArray("revoked_tasks"), e.revokedTasks());
            res.put("delay", e.delay());
        }
        return res;
    }

    static void putSorted(ArrayNode out, Collection<String> names) {
        for (String n : new TreeSet<>(names)) out.add(n);
    }

    static void putTasks(ArrayNode out, Collection<ConnectorTaskId> tasks) {
        for (ConnectorTaskId t : new TreeSet<>(tasks)) { ArrayNode p = out.addArray(); p.add(t.connector()); p.add(t.task()); }
    }

    static ObjectNode protocol(String op, JsonNode req) {
        ObjectNode res = MAPPER.createObjectNode();
        if (op.equals("encode_assignment")) {
            ExtendedAssignment a = assignmentOf(req);
            ByteBuffer b = a.version() == 0
                ? ConnectProtocol.serializeAssignment(new ConnectProtocol.Assignment(a.error(), a.leader(), a.leaderUrl(), a.offset(), a.connectors(), a.tasks()))
                : IncrementalCooperativeConnectProtocol.serializeAssignment(a, a.version() == 2);
            res.put("hex", hex(b));
        } else if (op.equals("encode_metadata")) {
            int version = req.get("version").asInt();
            JsonNode alloc = req.get("allocation");
            ByteBuffer b = version == 0
                ? ConnectProtocol.serializeMetadata(new ConnectProtocol.WorkerState(req.get("url").asText(), req.get("offset").asLong()))
                : IncrementalCooperativeConnectProtocol.serializeMetadata(new ExtendedWorkerState(req.get("url").asText(),
                    req.get("offset").asLong(), alloc == null || alloc.isNull() ? null : assignmentOf(alloc)), version == 2);
            res.put("hex", hex(b));
        } else if (op.equals("decode_assignment")) {
            ByteBuffer b = ByteBuffer.wrap(HexFormat.of().parseHex(req.get("hex").asText()));
            short version = b.getShort(0);
            return version == 0 ? assignmentJson(ConnectProtocol.deserializeAssignment(b), version)
                : assignmentJson(IncrementalCooperativeConnectProtocol.deserializeAssignment(b), version);
        } else {
            ByteBuffer b = ByteBuffer.wrap(HexFormat.of().parseHex(req.get("hex").asText()));
            short version = b.getShort(0);
            ConnectProtocol.WorkerState w = version == 0 ? ConnectProtocol.deserializeMetadata(b)
                : IncrementalCooperativeConnectProtocol.deserializeMetadata(b);
            res.put("version", version);
            res.put("url", w.url());
            res.put("offset", w.offset());
            if (w instanceof ExtendedWorkerState e && e.assignment() != null) {
                res.set("allocation", assignmentJson(e.assignment(), e.assignment().version()));
            }
        }
        return res;
    }

    static String hex(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return HexFormat.of().formatHex(out);
    }

    static ObjectNode handle(JsonNode req) throws Exception {
        String op = req.get("op").asText();
        if (op.equals("transform")) return transform(req);
        if (op.startsWith("encode_") || op.startsWith("decode_")) return protocol(op, req);
        boolean schemas = req.get("schemas").asBoolean();
        // convert: text -> Connect data (with the given schemas.enable) -> text again;
        // fromdata: read with schemas, write with the requested setting.
        JsonConverter reader = converter(op.equals("convert") ? schemas : true, false);
        JsonConverter writer = converter(schemas, false);
        SchemaAndValue data = reader.toConnectData("t", req.get("json").asText().getBytes(StandardCharsets.UTF_8));
        ObjectNode res = MAPPER.createObjectNode();
        res.put("json", write(writer, data.schema(), data.value()));
        return res;
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            ObjectNode res;
            try {
                res = handle(MAPPER.readTree(line));
            } catch (Throwable e) {
                res = MAPPER.createObjectNode();
                res.put("error", e.getClass().getName() + ": " + e.getMessage());
            }
            System.out.println(MAPPER.writeValueAsString(res));
            System.out.flush();
        }
    }
}
