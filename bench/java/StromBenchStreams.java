// Kafka Streams 4.4 side of bench/streams.py: the four workloads, one per run.
//
//   java -cp 'classes:<kafka lib>/*' StromBenchStreams <bootstrap> <workload> <prefix> <state.dir>
//
// Topics <prefix>-in, <prefix>-out, <prefix>-table; application.id <prefix>. One stream
// thread, at-least-once, commit interval 1 s, record caches off (every update of a count is
// an output record, as in Strom Streams and Quix Streams), String keys and values. Runs until
// SIGTERM (the bench reads its CPU time first, then stops it).

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.TimeWindows;

public final class StromBenchStreams {
    private StromBenchStreams() { }

    private static void build(StreamsBuilder builder, String workload, String prefix) {
        KStream<String, String> in = builder.stream(prefix + "-in");
        String out = prefix + "-out";
        switch (workload) {
            case "stateless":
                in.filter((k, v) -> !v.startsWith("#")).mapValues(v -> v.toUpperCase()).to(out);
                break;
            case "word-count":
                in.flatMapValues(line -> Arrays.asList(line.split(" ")))
                    .groupBy((k, w) -> w, Grouped.as("words"))
                    .count(Materialized.as("counts"))
                    .toStream().mapValues(n -> Long.toString(n)).to(out);
                break;
            case "tumbling-window-count":
                in.groupByKey()
                    .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(1)))
                    .count(Materialized.as("windows"))
                    .toStream()
                    .map((w, n) -> KeyValue.pair(w.key() + "@" + w.window().start(),
                                                 Long.toString(n)))
                    .to(out);
                break;
            case "stream-table-join":
                KTable<String, String> rows = builder.table(prefix + "-table",
                                                            Materialized.as("rows"));
                in.join(rows, (v, row) -> v + "|" + row).to(out);
                break;
            default:
                throw new IllegalArgumentException("unknown workload " + workload);
        }
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[3]);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        StreamsBuilder builder = new StreamsBuilder();
        build(builder, args[1], args[2]);
        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(30))));
        streams.start();
        stopped.await();
    }
}
