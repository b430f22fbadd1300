// One member of a KIP-932 share group (KafkaShareConsumer, explicit acknowledgement),
// driven by tests/interop/test_share_groups_java.py, which starts several and SIGKILLs some.
//
//   java -cp 'classes:<kafka lib>/*' StromShareConsumer <bootstrap> <group> <topic> <mode> <seconds>
//
// Sets the group's share.auto.offset.reset to earliest first (Admin, GROUP resource).
// <mode> decides each record's acknowledgement: "accept"; "release" (always released);
// "reject" (always rejected);
// "release-once" (released on its first delivery, accepted after); "reject-once"
// (rejected on its first delivery); "hold" (never acknowledged: the records stay
// acquired until the consumer dies or their lock expires).
// Prints "RECORD <offset> <delivery count> <value> <ack>" for each record, "COMMITTED"
// after each commitSync that carried acknowledgements, and "CLOSED" after <seconds>.

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;

public final class StromShareConsumer {
    private StromShareConsumer() {}

    private static void earliest(String bootstrap, String group) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(props)) {
            ConfigResource resource = new ConfigResource(ConfigResource.Type.GROUP, group);
            AlterConfigOp op = new AlterConfigOp(
                new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(op))).all().get();
            System.out.println("CONFIG ok");
        } catch (Exception e) {
            System.out.println("CONFIG failed " + e);
        }
        System.out.flush();
    }

    private static AcknowledgeType decide(String mode, short deliveries) {
        switch (mode) {
            case "release": return AcknowledgeType.RELEASE;
            case "reject": return AcknowledgeType.REJECT;
            case "release-once": return deliveries == 1 ? AcknowledgeType.RELEASE : AcknowledgeType.ACCEPT;
            case "reject-once": return deliveries == 1 ? AcknowledgeType.REJECT : AcknowledgeType.ACCEPT;
            case "hold": return null;
            default: return AcknowledgeType.ACCEPT;
        }
    }

    public static void main(String[] args) throws InterruptedException {
        String mode = args[3];
        earliest(args[0], args[1]);
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args[1]);
        props.put("share.acknowledgement.mode", "explicit");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        long end = System.currentTimeMillis() + Long.parseLong(args[4]) * 1000;
        try (KafkaShareConsumer<String, String> consumer = new KafkaShareConsumer<>(props)) {
            consumer.subscribe(List.of(args[2]));
            while (System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                boolean acked = false;
                for (ConsumerRecord<String, String> record : records) {
                    short deliveries = record.deliveryCount().orElse((short) 0);
                    AcknowledgeType type = decide(mode, deliveries);
                    System.out.println("RECORD " + record.offset() + " " + deliveries + " "
                        + record.value() + " " + (type == null ? "NONE" : type.name()));
                    if (type != null) {
                        consumer.acknowledge(record, type);
                        acked = true;
                    }
                }
                System.out.flush();
                if (mode.equals("hold") && !records.isEmpty()) {
                    Thread.sleep(Math.max(0, end - System.currentTimeMillis()));
                    break;  // explicit mode: no poll before every record is acknowledged
                }
                if (acked) {
                    consumer.commitSync();
                    System.out.println("COMMITTED");
                    System.out.flush();
                }
            }
        }
        System.out.println("CLOSED");
        System.out.flush();
    }
}
