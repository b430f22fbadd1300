// A Kafka Streams 4.4 application with processing.guarantee=exactly_once_v2, run unchanged
// against a broker by tests/interop/test_streams_eos.py (two instances, one SIGKILLed).
//
//   java -cp 'classes:<kafka lib>/*' StromStreamsEos <bootstrap> <application.id> <state.dir>
//
// Topology, from the topic words-in (key: line number, value: words separated by spaces)
// and the table topic word-kinds (key: word, value: its kind):
//   * word count: words re-keyed by word (a repartition topic), counted in a store with a
//     changelog topic, every update to word-counts (word -> count);
//   * windowed count: the same words in 10 s tumbling windows by record time, every update
//     to windowed-counts (word@windowStart -> count);
//   * stream-table join: each word joined with its kind, to word-joined (word -> word:kind).
// Record caches are off, so each input word yields exactly one update of each output: a
// duplicate or a lost record shows in the sequences the test reads with read_committed.
// Prints "STATE <new state>" on each state change.

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;

public final class StromStreamsEos {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[2]);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, 2000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> lines = builder.stream("words-in");
        KStream<String, String> words = lines
            .flatMapValues(line -> Arrays.asList(line.split(" ")))
            .selectKey((lineNo, word) -> word);
        KGroupedStream<String, String> byWord = words.groupByKey(
            Grouped.with("by-word", Serdes.String(), Serdes.String()));
        byWord.count().toStream()
            .to("word-counts", Produced.with(Serdes.String(), Serdes.Long()));
        byWord.windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofDays(1)))
            .count().toStream()
            .map((window, count) -> KeyValue.pair(
                window.key() + "@" + window.window().start(), count))
            .to("windowed-counts", Produced.with(Serdes.String(), Serdes.Long()));
        KTable<String, String> kinds = builder.table("word-kinds",
            Consumed.with(Serdes.String(), Serdes.String()));
        words.repartition().join(kinds, (word, kind) -> word + ":" + kind).to("word-joined");

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("STATE " + now);
            System.out.flush();
            if (now == KafkaStreams.State.NOT_RUNNING || now == KafkaStreams.State.ERROR) {
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(exc -> {
            exc.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                .StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(30))));
        streams.start();
        stopped.await();
    }
}
