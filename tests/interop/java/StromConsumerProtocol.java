// One member of a KIP-848 consumer group (group.protocol=consumer), driven by
// tests/interop/test_consumer_protocol_java.py, which starts several and SIGKILLs some.
//
//   java -cp 'classes:<kafka lib>/*' StromConsumerProtocol <bootstrap> <group> <topic> <seconds> [instance id]
//
// With an instance id the member is static: close() leaves with epoch -2, keeping its
// partitions for its return within the session timeout.
// <topic> "regex:<pattern>" subscribes to a broker-side regular expression (KIP-848's
// SubscriptionPattern) instead; "classic:<topic>" joins with the classic protocol
// (group.protocol=classic: JoinGroup/SyncGroup/Heartbeat, as in a mixed group). Prints "ASSIGNED t:p,t:p,..." whenever its assignment changes, "RECORD p offset" for each
// record, commits synchronously after every poll that returned records ("COMMITTED n":
// n records so far), and closes
// (leaving the group) after <seconds>, printing "CLOSED".

import java.time.Duration;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.serialization.StringDeserializer;

public final class StromConsumerProtocol {
    private StromConsumerProtocol() {}

    public static void main(String[] args) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args[1]);
        String topic = args[2];
        if (topic.startsWith("classic:")) {
            topic = topic.substring("classic:".length());
            props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        } else {
            props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        }
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        if (args.length > 4) {
            props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, args[4]);
        }
        long deadline = System.nanoTime() + Long.parseLong(args[3]) * 1_000_000_000L;
        String last = null;
        int committed = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            if (topic.startsWith("regex:")) {
                consumer.subscribe(new SubscriptionPattern(topic.substring("regex:".length())));
            } else {
                consumer.subscribe(Set.of(topic));
            }
            while (System.nanoTime() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> record : records) {
                    System.out.println("RECORD " + record.partition() + " " + record.offset());
                }
                if (!records.isEmpty()) {
                    consumer.commitSync();
                    committed += records.count();
                    System.out.println("COMMITTED " + committed);
                }
                String now = consumer.assignment().stream()
                        .map(tp -> tp.topic() + ":" + tp.partition()).sorted()
                        .collect(Collectors.joining(","));
                if (!now.equals(last)) {
                    System.out.println("ASSIGNED " + now);
                    last = now;
                }
                System.out.flush();
            }
        }
        System.out.println("CLOSED");
    }
}
