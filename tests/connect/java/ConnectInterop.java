// Kafka Connect's own JsonConverter and transforms, driven line by line over stdin/stdout,
// so tests/connect/test_connect_interop.py can compare Strom Connect's output with Kafka's.
// One JSON request per line, one JSON answer per line:
//   {"op":"convert","schemas":true,"json":"<envelope text>"}  -> {"json":"<Kafka's bytes as text>"}
//   {"op":"fromdata","schemas":false,"json":"<envelope with schema>"} -> same, re-encoded
//   {"op":"transform","class":"...","config":{...},"predicate":{...}?,"negate":false,
//    "topic":"t","partition":0,"timestamp":123,"key":"<envelope>","value":"<envelope>",
//    "headers":[["name","<envelope>"]]}
//   -> {"dropped":false,"topic":..,"partition":..,"timestamp":..,"key":..,"value":..,"headers":[..]}
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

    static ObjectNode handle(JsonNode req) throws Exception {
        String op = req.get("op").asText();
        if (op.equals("transform")) return transform(req);
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
