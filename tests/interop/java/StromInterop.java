// Java kafka-clients against a Strom broker: the AdminClient, the idempotent producer,
// a two-member consumer group with the cooperative-sticky assignor, and seeks by timestamp.
//
//   java -cp 'classes:<kafka lib>/*' StromInterop <bootstrap> <check>...
//
// checks: admin, producer, group, timestamps. Each prints "PASS <check>" or a stack trace;
// the exit code is the number of failed checks. Compiled and run by tests/interop.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class StromInterop {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static String bootstrap;

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: StromInterop <bootstrap> <check>...");
            System.exit(64);
        }
        bootstrap = args[0];
        int failed = 0;
        for (int i = 1; i < args.length; i++) {
            String check = args[i];
            try {
                switch (check) {
                    case "admin": admin(); break;
                    case "producer": producer(); break;
                    case "group": group(); break;
                    case "timestamps": timestamps(); break;
                    default: throw new IllegalArgumentException("unknown check " + check);
                }
                System.out.println("PASS " + check);
            } catch (Throwable t) {
                failed++;
                System.out.println("FAIL " + check + ": " + t);
                t.printStackTrace(System.out);
            }
            System.out.flush();
        }
        System.exit(failed);
    }

    // ---------------------------------------------------------------- helpers

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static void eq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
        }
    }

    static void waitFor(BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(50);
        }
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin0() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        return Admin.create(p);
    }

    static KafkaProducer<String, String> producer0(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer0(String group, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs)))
             .all().get(30, TimeUnit.SECONDS);
    }

    static Map<String, String> entries(Config config) {
        Map<String, String> out = new HashMap<>();
        for (ConfigEntry e : config.entries()) out.put(e.name(), e.value());
        return out;
    }

    static ConfigEntry entry(Admin admin, ConfigResource res, String name) throws Exception {
        Config c = admin.describeConfigs(List.of(res)).all().get(30, TimeUnit.SECONDS).get(res);
        return c.get(name);
    }

    /** The entry once `settled` holds, or the last one seen after 15 s: Kafka's brokers apply
     *  an altered config from the metadata log asynchronously, so a describe right after the
     *  alter may still show the old value there. */
    static ConfigEntry settledEntry(Admin admin, ConfigResource res, String name,
                                    java.util.function.Predicate<ConfigEntry> settled) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        ConfigEntry current = entry(admin, res, name);
        while (!settled.test(current) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            current = entry(admin, res, name);
        }
        return current;
    }

    // ---------------------------------------------------------------- admin

    static void admin() throws Exception {
        try (Admin admin = admin0()) {
            DescribeClusterResult cluster = admin.describeCluster();
            Collection<Node> nodes = cluster.nodes().get(30, TimeUnit.SECONDS);
            String clusterId = cluster.clusterId().get(30, TimeUnit.SECONDS);
            Node controller = cluster.controller().get(30, TimeUnit.SECONDS);
            eq(1, nodes.size(), "cluster nodes " + nodes);
            Node node = nodes.iterator().next();
            check(clusterId != null && !clusterId.isEmpty(), "cluster id " + clusterId);
            check(controller != null && !controller.isEmpty(), "controller " + controller);
            check(bootstrap.endsWith(":" + node.port()), "node port " + node + " vs " + bootstrap);

            String topic = unique("java-admin");
            createTopic(admin, topic, 3, Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
            // Kafka answers CreateTopics before every listener's metadata has the topic
            waitFor(() -> {
                try {
                    return admin.listTopics().names().get().contains(topic);
                } catch (Exception e) {
                    return false;
                }
            }, topic + " to be listed");

            TopicDescription desc = admin.describeTopics(List.of(topic)).allTopicNames()
                                         .get(30, TimeUnit.SECONDS).get(topic);
            eq(topic, desc.name(), "described name");
            eq(3, desc.partitions().size(), "partition count");
            check(!desc.isInternal(), "not internal");
            check(desc.topicId() != null && !desc.topicId().equals(org.apache.kafka.common.Uuid.ZERO_UUID),
                  "topic id " + desc.topicId());
            for (TopicPartitionInfo p : desc.partitions()) {
                check(p.leader() != null && p.leader().id() == node.id(), "leader of " + p);
                eq(1, p.replicas().size(), "replicas of " + p);
                eq(1, p.isr().size(), "isr of " + p);
            }

            // creating it again is an error the client maps to TopicExistsException
            try {
                createTopic(admin, topic, 1, Map.of());
                throw new AssertionError("second create of " + topic + " succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException,
                      "duplicate create error " + e.getCause());
            }

            // topic configs: the explicit ones as DYNAMIC_TOPIC_CONFIG, the rest as defaults
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            ConfigEntry retention = entry(admin, res, "retention.ms");
            eq("3600000", retention.value(), "retention.ms");
            eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source(), "retention.ms source");
            ConfigEntry segment = entry(admin, res, "segment.bytes");
            check(segment != null && segment.value() != null, "segment.bytes is described: " + segment);
            check(segment.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                  "segment.bytes default source " + segment.source());

            admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET))))
                 .all().get(30, TimeUnit.SECONDS);
            eq("7200000", settledEntry(admin, res, "retention.ms", e -> "7200000".equals(e.value())).value(),
               "retention.ms after alter");
            eq("2000000", settledEntry(admin, res, "max.message.bytes", e -> "2000000".equals(e.value())).value(),
               "max.message.bytes after alter");
            admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", ""), AlterConfigOp.OpType.DELETE))))
                 .all().get(30, TimeUnit.SECONDS);
            check(settledEntry(admin, res, "max.message.bytes",
                               e -> e.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG).source()
                  != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "max.message.bytes back to its default");

            // broker configs
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node.id()));
            Map<String, String> brokerConfigs = entries(
                    admin.describeConfigs(List.of(broker)).all().get(30, TimeUnit.SECONDS).get(broker));
            check(brokerConfigs.containsKey("log.retention.hours") || brokerConfigs.containsKey("log.retention.ms"),
                  "broker configs include log retention: " + brokerConfigs.keySet());
            check(brokerConfigs.containsKey("num.partitions"), "broker configs include num.partitions");

            // grow the topic
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get(30, TimeUnit.SECONDS);
            waitFor(() -> {
                try {
                    return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic)
                                .partitions().size() == 5;
                } catch (Exception e) {
                    return false;
                }
            }, topic + " to have 5 partitions");

            // delete it; it must disappear from listings and descriptions
            admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            waitFor(() -> {
                try {
                    return !admin.listTopics().names().get().contains(topic);
                } catch (Exception e) {
                    return false;
                }
            }, topic + " to disappear");
            try {
                admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS);
                throw new AssertionError("describe of deleted " + topic + " succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof UnknownTopicOrPartitionException,
                      "describe deleted topic error " + e.getCause());
            }
        }
    }

    // ---------------------------------------------------------------- producer

    static void producer() throws Exception {
        String topic = unique("java-idempotent");
        int partitions = 3, count = 3000;
        try (Admin admin = admin0()) {
            createTopic(admin, topic, partitions, Map.of());
        }
        Map<Integer, List<Long>> offsets = new HashMap<>();
        try (KafkaProducer<String, String> producer = producer0(Map.of(ProducerConfig.LINGER_MS_CONFIG, 5))) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                ProducerRecord<String, String> rec = new ProducerRecord<>(topic, "k" + i, "v" + i);
                rec.headers().add("seq", Integer.toString(i).getBytes());
                futures.add(producer.send(rec));
            }
            producer.flush();
            for (Future<RecordMetadata> f : futures) {
                RecordMetadata md = f.get(30, TimeUnit.SECONDS);
                offsets.computeIfAbsent(md.partition(), p -> new ArrayList<>()).add(md.offset());
            }
        }
        int total = 0;
        for (Map.Entry<Integer, List<Long>> e : offsets.entrySet()) {
            List<Long> offs = new ArrayList<>(e.getValue());
            Collections.sort(offs);
            for (int i = 0; i < offs.size(); i++) eq((long) i, offs.get(i), "offset in partition " + e.getKey());
            total += offs.size();
        }
        eq(count, total, "acknowledged records");
        check(offsets.size() > 1, "keys spread over partitions " + offsets.keySet());

        // read everything back: no duplicates, keys/values/headers intact, and the batches
        // carry a producer id (idempotence was on)
        try (KafkaConsumer<String, String> consumer = consumer0(null, Map.of())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Set<String> seen = new HashSet<>();
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (seen.size() < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    String n = r.key().substring(1);
                    eq("v" + n, r.value(), "value of " + r.key());
                    Header h = r.headers().lastHeader("seq");
                    check(h != null && new String(h.value()).equals(n), "header of " + r.key());
                    check(seen.add(r.key()), "duplicate " + r.key());
                }
            }
            eq(count, seen.size(), "records read back");
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            long sum = 0;
            for (long v : end.values()) sum += v;
            eq((long) count, sum, "end offsets");
        }
    }

    // ---------------------------------------------------------------- group

    static final class Member implements ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Set<TopicPartition> owned = new HashSet<>();
        final List<String> events = new ArrayList<>();
        final Map<TopicPartition, Long> positions = new HashMap<>();
        int records;
        int maxRevoked;

        Member(String name, String group, String topic) {
            this.name = name;
            this.consumer = consumer0(group, Map.of(
                    ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName(),
                    ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000,
                    ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500));
            consumer.subscribe(List.of(topic), this);
        }

        void poll(Set<String> seen) {
            ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(100));
            for (ConsumerRecord<String, String> r : recs) {
                check(owned.contains(new TopicPartition(r.topic(), r.partition())),
                      name + " got a record of a partition it does not own: " + r.partition());
                check(seen.add(r.partition() + "@" + r.offset()), "duplicate " + r.partition() + "@" + r.offset());
                records++;
            }
            if (!recs.isEmpty()) consumer.commitSync(TIMEOUT);
        }

        @Override public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            // cooperative: only what moves away is revoked; commit before giving it up
            events.add("revoked " + partitions);
            maxRevoked = Math.max(maxRevoked, partitions.size());
            if (!partitions.isEmpty()) consumer.commitSync(TIMEOUT);
            owned.removeAll(partitions);
        }

        @Override public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            events.add("assigned " + partitions);
            owned.addAll(partitions);
        }

        @Override public void onPartitionsLost(Collection<TopicPartition> partitions) {
            events.add("lost " + partitions);
            owned.removeAll(partitions);
        }
    }

    static void group() throws Exception {
        String topic = unique("java-group");
        String group = unique("java-cg");
        int partitions = 6, perPhase = 600;
        try (Admin admin = admin0()) {
            createTopic(admin, topic, partitions, Map.of());
            Set<String> seen = new HashSet<>();
            try (KafkaProducer<String, String> producer = producer0(Map.of())) {
                for (int i = 0; i < perPhase; i++) producer.send(new ProducerRecord<>(topic, "a" + i, "x"));
                producer.flush();

                Member a = new Member("a", group, topic);
                waitFor(() -> { a.poll(seen); return a.owned.size() == partitions && seen.size() == perPhase; },
                        "member a to own all partitions and read phase one");

                Member b = new Member("b", group, topic);
                Set<TopicPartition> ownedByABefore = new HashSet<>(a.owned);
                waitFor(() -> {
                    a.poll(seen);
                    b.poll(seen);
                    Set<TopicPartition> union = new HashSet<>(a.owned);
                    union.addAll(b.owned);
                    Set<TopicPartition> both = new HashSet<>(a.owned);
                    both.retainAll(b.owned);
                    return !a.owned.isEmpty() && !b.owned.isEmpty() && both.isEmpty()
                            && union.size() == partitions;
                }, "the two members to split the partitions; a=" + a.events + " b=" + b.events);
                eq(partitions / 2, b.owned.size(), "b's share (a=" + a.owned + ", b=" + b.owned + ")");
                check(ownedByABefore.containsAll(a.owned), "a kept a subset (sticky)");
                // cooperative: a gave up only what moved to b, never everything at once
                eq(partitions / 2, a.maxRevoked, "largest revocation of a " + a.events);

                for (int i = 0; i < perPhase; i++) producer.send(new ProducerRecord<>(topic, "b" + i, "y"));
                producer.flush();
                waitFor(() -> { a.poll(seen); b.poll(seen); return seen.size() == 2 * perPhase; },
                        "both phases consumed, seen " + seen.size());
                check(a.records > 0 && b.records > 0, "both members consumed in phase two");

                // while both are members: describe the group
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all()
                        .get(30, TimeUnit.SECONDS).get(group);
                eq(2, d.members().size(), "members " + d.members());
                eq("cooperative-sticky", d.partitionAssignor(), "assignor");
                eq("Stable", d.groupState().toString(), "state");
                Set<TopicPartition> described = new HashSet<>();
                for (MemberDescription m : d.members()) described.addAll(m.assignment().topicPartitions());
                eq(partitions, described.size(), "described assignment " + described);

                // committed offsets equal the end offsets
                Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
                for (int p = 0; p < partitions; p++) latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends =
                        admin.listOffsets(latest).all().get(30, TimeUnit.SECONDS);
                for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : ends.entrySet()) {
                    long end = e.getValue().offset();
                    OffsetAndMetadata c = committed.get(e.getKey());
                    if (end > 0) {
                        check(c != null, "committed offset of " + e.getKey());
                        eq(end, c.offset(), "committed offset of " + e.getKey());
                    }
                }

                b.consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(TIMEOUT));
                // a takes b's partitions back
                waitFor(() -> { a.poll(seen); return a.owned.size() == partitions; },
                        "a to own everything after b left; a=" + a.events);
                a.consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(TIMEOUT));
            }
            waitFor(() -> {
                try {
                    ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all()
                            .get().get(group);
                    return d.members().isEmpty() && d.groupState().toString().equals("Empty");
                } catch (Exception e) {
                    return false;
                }
            }, "group to be empty");
            admin.deleteConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS);
        }
    }

    // ---------------------------------------------------------------- timestamps

    static void timestamps() throws Exception {
        String topic = unique("java-times");
        try (Admin admin = admin0()) {
            createTopic(admin, topic, 1, Map.of());
        }
        long base = System.currentTimeMillis() - 3_600_000L;
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<String, String> producer = producer0(Map.of(ProducerConfig.LINGER_MS_CONFIG, 0))) {
            for (int i = 0; i < 20; i++) {
                // separate sends so the timestamps land in several batches
                producer.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "k" + i, "v" + i))
                        .get(30, TimeUnit.SECONDS);
            }
        }
        try (KafkaConsumer<String, String> consumer = consumer0(null, Map.of())) {
            Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(
                    Map.of(tp, base + 4500L), TIMEOUT);
            OffsetAndTimestamp at = found.get(tp);
            check(at != null, "offsetsForTimes(base+4500) found nothing");
            eq(5L, at.offset(), "offset for base+4500");
            eq(base + 5000L, at.timestamp(), "timestamp for base+4500");
            eq(0L, consumer.offsetsForTimes(Map.of(tp, base - 1), TIMEOUT).get(tp).offset(), "before all");
            eq(null, consumer.offsetsForTimes(Map.of(tp, base + 60_000L), TIMEOUT).get(tp), "after all");
            eq(0L, consumer.beginningOffsets(List.of(tp), TIMEOUT).get(tp), "beginning offset");
            eq(20L, consumer.endOffsets(List.of(tp), TIMEOUT).get(tp), "end offset");

            consumer.assign(List.of(tp));
            consumer.seek(tp, at.offset());
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (got.size() < 15 && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) got.add(r);
            }
            eq(15, got.size(), "records after the seek");
            eq(5L, got.get(0).offset(), "first offset after the seek");
            eq("k5", got.get(0).key(), "first key after the seek");
            eq(base + 5000L, got.get(0).timestamp(), "first timestamp after the seek");
        }
        // the admin client's ListOffsets by timestamp and max timestamp
        try (Admin admin = admin0()) {
            ListOffsetsResult.ListOffsetsResultInfo info = admin.listOffsets(
                    Map.of(tp, OffsetSpec.forTimestamp(base + 10_000L))).all().get(30, TimeUnit.SECONDS).get(tp);
            eq(10L, info.offset(), "admin offset for base+10000");
            ListOffsetsResult.ListOffsetsResultInfo max = admin.listOffsets(
                    Map.of(tp, OffsetSpec.maxTimestamp())).all().get(30, TimeUnit.SECONDS).get(tp);
            eq(19L, max.offset(), "max timestamp offset");
            eq(base + 19_000L, max.timestamp(), "max timestamp");
        }
    }
}
