// The oracle of tests/streams/test_streams_oracle.py: Kafka Streams 4.4's own
// TopologyTestDriver runs the named topologies over the records read from stdin and
// prints every output record, so Strom Streams' output can be compared record for record.
//
// stdin:  "#scenario NAME", then "topic<TAB>key<TAB>value<TAB>timestamp" lines ("\N": null)
// stdout: "#scenario NAME", then "topic<TAB>key<TAB>value<TAB>timestamp" per output record
// Record caches are off (statestore.cache.max.bytes=0): every update is forwarded.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.test.TestRecord;

public class StreamsOracle {
    static final Serde<String> S = Serdes.String();
    static final String[] OUTPUTS = {"out", "out2", "out3"};

    static String str(Object o) {
        return o == null ? null : o.toString();
    }

    static KeyValue<String, String> win(Windowed<String> wk, Object v) {
        return KeyValue.pair(wk.key() + "@" + wk.window().start() + "/" + wk.window().end(), str(v));
    }

    static String join(Object a, Object b) {
        return str(a) + "+" + str(b);
    }

    static KStream<String, String> in(StreamsBuilder b, String topic) {
        return b.stream(topic, Consumed.with(S, S));
    }

    static KTable<String, String> table(StreamsBuilder b, String topic) {
        return b.table(topic, Consumed.with(S, S));
    }

    static void out(KStream<String, String> s, String topic) {
        s.to(topic, Produced.with(S, S));
    }

    static Topology build(String name) {
        StreamsBuilder b = new StreamsBuilder();
        switch (name) {
            case "wordcount":
                out(in(b, "in").flatMapValues(v -> Arrays.asList(v.split(" ")))
                    .groupBy((k, w) -> w, Grouped.with(S, S)).count().toStream()
                    .mapValues(v -> str(v)), "out");
                break;
            case "tumbling":
                out(in(b, "in").groupByKey()
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(10), Duration.ofMillis(5)))
                    .count().toStream().map(StreamsOracle::win), "out");
                break;
            case "hopping":
                out(in(b, "in").groupByKey()
                    .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(10)).advanceBy(Duration.ofMillis(5)))
                    .count().toStream().map(StreamsOracle::win), "out");
                break;
            case "session":
                out(in(b, "in").groupByKey()
                    .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(Duration.ofMillis(10)))
                    .count().toStream().map(StreamsOracle::win), "out");
                break;
            case "session_grace":
                out(in(b, "in").groupByKey()
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(10), Duration.ofMillis(7)))
                    .reduce((x, y) -> x + "," + y).toStream().map(StreamsOracle::win), "out");
                break;
            case "sliding":
                out(in(b, "in").groupByKey()
                    .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(10), Duration.ofMillis(30)))
                    .count().toStream().map(StreamsOracle::win), "out");
                break;
            case "suppress":
                out(in(b, "in").groupByKey()
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(10), Duration.ofMillis(5)))
                    .count().suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                    .toStream().map(StreamsOracle::win), "out");
                break;
            case "stream_table_join": {
                KTable<String, String> t = table(b, "t");
                KStream<String, String> s = in(b, "in");
                out(s.join(t, StreamsOracle::join), "out");
                out(s.leftJoin(t, StreamsOracle::join), "out2");
                break;
            }
            case "table_table_join": {
                KTable<String, String> a = table(b, "a");
                KTable<String, String> c = table(b, "c");
                out(a.join(c, StreamsOracle::join).toStream(), "out");
                out(a.leftJoin(c, StreamsOracle::join).toStream(), "out2");
                out(a.outerJoin(c, StreamsOracle::join).toStream(), "out3");
                break;
            }
            case "stream_stream_join":
            case "stream_stream_join_asymmetric": {
                KStream<String, String> l = in(b, "l");
                KStream<String, String> r = in(b, "r");
                JoinWindows w = name.endsWith("asymmetric")
                    ? JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(10), Duration.ofMillis(5))
                        .before(Duration.ofMillis(3))
                    : JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(10), Duration.ofMillis(0));
                out(l.join(r, StreamsOracle::join, w, StreamJoined.with(S, S, S)), "out");
                out(l.leftJoin(r, StreamsOracle::join, w, StreamJoined.with(S, S, S)), "out2");
                out(l.outerJoin(r, StreamsOracle::join, w, StreamJoined.with(S, S, S)), "out3");
                break;
            }
            case "fk_join": {
                KTable<String, String> orders = table(b, "orders");
                KTable<String, String> customers = table(b, "customers");
                out(orders.join(customers, v -> v.split(":")[0], (o, c) -> str(c) + ":" + o).toStream(), "out");
                out(orders.leftJoin(customers, v -> v.split(":")[0], (o, c) -> str(c) + ":" + o).toStream(), "out2");
                break;
            }
            case "table_ops": {
                KTable<String, String> t = table(b, "t");
                out(t.filter((k, v) -> v.compareTo("v3") > 0).toStream(), "out");
                out(t.mapValues(v -> v + "!").toStream(), "out2");
                out(in(b, "in").toTable().toStream(), "out3");
                break;
            }
            case "session_suppress":
                out(in(b, "in").groupByKey()
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(10), Duration.ofMillis(4)))
                    .count().suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                    .toStream().map(StreamsOracle::win), "out");
                break;
            case "reduce_aggregate": {
                KStream<String, String> s = in(b, "in");
                out(s.groupByKey().reduce((x, y) -> x + "," + y).toStream(), "out");
                out(s.groupByKey().aggregate(() -> "", (k, v, agg) -> agg + v.length(),
                    org.apache.kafka.streams.kstream.Materialized.with(S, S)).toStream(), "out2");
                out(s.filter((k, v) -> v.endsWith("1")).selectKey((k, v) -> v).groupByKey()
                    .count().toStream().mapValues(v -> str(v)), "out3");
                break;
            }
            case "versioned_join": {
                KTable<String, String> t = b.table("t", Consumed.with(S, S),
                    org.apache.kafka.streams.kstream.Materialized.<String, String>as(
                        org.apache.kafka.streams.state.Stores.persistentVersionedKeyValueStore(
                            "versioned", Duration.ofMillis(50))).withKeySerde(S).withValueSerde(S));
                KStream<String, String> s = in(b, "in");
                out(s.join(t, StreamsOracle::join), "out");
                out(s.leftJoin(t, StreamsOracle::join), "out2");
                out(t.toStream(), "out3");
                break;
            }
            case "table_groupby":
                out(table(b, "users").groupBy((u, r) -> KeyValue.pair(r, r), Grouped.with(S, S))
                    .count().toStream().mapValues(v -> str(v)), "out");
                break;
            default:
                throw new IllegalArgumentException("unknown scenario " + name);
        }
        return b.build();
    }

    static String field(String s) {
        return "\\N".equals(s) ? null : s;
    }

    static String show(String s) {
        return s == null ? "\\N" : s;
    }

    static void run(String name, List<String[]> records) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle-" + name.replace(':', '-'));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        System.out.println("#scenario " + name);
        // "session:random-1": the session topology over another input
        try (TopologyTestDriver driver = new TopologyTestDriver(build(name.split(":")[0]), props)) {
            Map<String, TestInputTopic<String, String>> inputs = new LinkedHashMap<>();
            for (String[] r : records) {
                TestInputTopic<String, String> topic = inputs.computeIfAbsent(
                    r[0], t -> driver.createInputTopic(t, S.serializer(), S.serializer()));
                topic.pipeInput(field(r[1]), field(r[2]), Long.parseLong(r[3]));
            }
            for (String name2 : OUTPUTS) {
                TestOutputTopic<String, String> topic = driver.createOutputTopic(
                    name2, S.deserializer(), S.deserializer());
                for (TestRecord<String, String> rec : topic.readRecordsToList()) {
                    System.out.println(name2 + "\t" + show(rec.key()) + "\t" + show(rec.value())
                        + "\t" + rec.timestamp());
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader reader = new BufferedReader(new InputStreamReader(System.in));
        String scenario = null;
        List<String[]> records = new ArrayList<>();
        String line;
        while ((line = reader.readLine()) != null) {
            if (line.startsWith("#scenario ")) {
                if (scenario != null) {
                    run(scenario, records);
                }
                scenario = line.substring("#scenario ".length()).trim();
                records = new ArrayList<>();
            } else if (!line.isEmpty()) {
                records.add(line.split("\t", -1));
            }
        }
        if (scenario != null) {
            run(scenario, records);
        }
    }
}
