// The Java AdminClient's topic and config calls against a broker, one named check each:
// what Kafka 4.4's own tools (kafka-topics, kafka-configs) and UIs built on the AdminClient
// ask of a broker. Run by tests/interop/test_admin_sweep.py against Strom and Kafka.
//
//   java -cp 'classes:<kafka lib>/*' AdminSweep <bootstrap> <check>...
//
// Each check prints "PASS <check>" or "FAIL <check>: <why>"; the exit code is the number
// of failures.

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListConfigResourcesOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

public final class AdminSweep {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static String bootstrap;
    private static Admin admin;

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        int failed = 0;
        try (Admin a = Admin.create(p)) {
            admin = a;
            for (int i = 1; i < args.length; i++) {
                String check = args[i];
                try {
                    run(check);
                    System.out.println("PASS " + check);
                } catch (Throwable t) {
                    failed++;
                    System.out.println("FAIL " + check + ": " + t);
                    t.printStackTrace(System.out);
                }
                System.out.flush();
            }
        }
        System.exit(failed);
    }

    static void run(String check) throws Exception {
        switch (check) {
            case "topics-by-id": topicsById(); break;
            case "describe-paged": describePaged(); break;
            case "create-validate-only": createValidateOnly(); break;
            case "create-partitions-validate-only": createPartitionsValidateOnly(); break;
            case "broker-default-configs": brokerDefaultConfigs(); break;
            case "broker-configs": brokerConfigs(); break;
            case "list-config-resources": listConfigResources(); break;
            case "describe-log-dirs": describeLogDirs(); break;
            default: throw new IllegalArgumentException("unknown check " + check);
        }
    }

    // ---------------------------------------------------------------- helpers

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static int nodeId() throws Exception {
        return admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next().id();
    }

    static Uuid create(String name, int partitions, Map<String, String> configs) throws Exception {
        CreateTopicsResult result = admin.createTopics(
            List.of(new NewTopic(name, partitions, (short) 1).configs(configs)));
        result.all().get(30, TimeUnit.SECONDS);
        Uuid id = result.topicId(name).get(30, TimeUnit.SECONDS);
        waitUntilDescribed(name);
        return id;
    }

    /** Kafka answers CreateTopics before its metadata cache has the topic. */
    static void waitUntilDescribed(String name) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            try {
                admin.describeTopics(List.of(name)).allTopicNames().get(30, TimeUnit.SECONDS);
                return;
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)
                        || System.nanoTime() > deadline) throw e;
                Thread.sleep(100);
            }
        }
    }

    static <T extends Throwable> T expect(Class<T> kind, Callable call) throws Exception {
        try {
            call.run();
        } catch (ExecutionException e) {
            if (kind.isInstance(e.getCause())) return kind.cast(e.getCause());
            throw new AssertionError("expected " + kind.getSimpleName() + ", got " + e.getCause(), e);
        }
        throw new AssertionError("expected " + kind.getSimpleName() + ", the call succeeded");
    }

    interface Callable {
        void run() throws Exception;
    }

    static ConfigEntry settled(ConfigResource resource, String name, String value)
            throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            Config config = admin.describeConfigs(List.of(resource),
                                                  new DescribeConfigsOptions().includeSynonyms(true))
                                 .all().get(30, TimeUnit.SECONDS).get(resource);
            ConfigEntry entry = config.get(name);
            String seen = entry == null ? null : entry.value();
            if (java.util.Objects.equals(seen, value) || System.nanoTime() > deadline) return entry;
            Thread.sleep(100);
        }
    }

    // ---------------------------------------------------------------- checks

    /** Describe and delete by topic id (TopicCollection.ofTopicIds). */
    static void topicsById() throws Exception {
        String name = unique("sweep-ids");
        Uuid id = create(name, 2, Map.of());
        TopicDescription byId = admin.describeTopics(TopicCollection.ofTopicIds(List.of(id)))
            .allTopicIds().get(30, TimeUnit.SECONDS).get(id);
        check(name.equals(byId.name()), "described by id: " + byId);
        check(byId.partitions().size() == 2, "partitions " + byId.partitions());
        admin.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get(30, TimeUnit.SECONDS);
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(name)) {
            check(System.nanoTime() < deadline, name + " still listed after delete by id");
            Thread.sleep(100);
        }
    }

    /** describeTopics pages through DescribeTopicPartitions with a small limit. */
    static void describePaged() throws Exception {
        String a = unique("sweep-paged-a");
        String b = unique("sweep-paged-b");
        create(a, 5, Map.of());
        create(b, 3, Map.of());
        Map<String, TopicDescription> found = admin.describeTopics(List.of(a, b),
            new DescribeTopicsOptions().partitionSizeLimitPerResponse(2))
            .allTopicNames().get(30, TimeUnit.SECONDS);
        check(found.get(a).partitions().size() == 5, "paged " + a + ": " + found.get(a));
        check(found.get(b).partitions().size() == 3, "paged " + b + ": " + found.get(b));
        for (int i = 0; i < 5; i++) {
            check(found.get(a).partitions().get(i).partition() == i, "order of " + found.get(a));
        }
        Set<String> all = admin.listTopics(new ListTopicsOptions().listInternal(true))
                               .names().get(30, TimeUnit.SECONDS);
        Map<String, TopicDescription> every = admin.describeTopics(all,
            new DescribeTopicsOptions().partitionSizeLimitPerResponse(1))
            .allTopicNames().get(30, TimeUnit.SECONDS);
        check(every.keySet().containsAll(List.of(a, b)), "every topic described: " + every.keySet());
    }

    /** validateOnly creates nothing; an unknown config name is refused even then. */
    static void createValidateOnly() throws Exception {
        String name = unique("sweep-validate");
        admin.createTopics(List.of(new NewTopic(name, 2, (short) 1)),
                           new CreateTopicsOptions().validateOnly(true)).all().get(30, TimeUnit.SECONDS);
        check(!admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(name),
              name + " exists after a validate-only create");
        InvalidConfigurationException refused = expect(InvalidConfigurationException.class, () ->
            admin.createTopics(List.of(new NewTopic(name, 1, (short) 1)
                                   .configs(Map.of("no.such.topic.config", "1"))),
                               new CreateTopicsOptions().validateOnly(true))
                 .all().get(30, TimeUnit.SECONDS));
        check(refused.getMessage().contains("Unknown topic config name: no.such.topic.config"),
              "message " + refused.getMessage());
    }

    static void createPartitionsValidateOnly() throws Exception {
        String name = unique("sweep-grow");
        create(name, 1, Map.of());
        admin.createPartitions(Map.of(name, NewPartitions.increaseTo(3)),
                               new CreatePartitionsOptions().validateOnly(true))
             .all().get(30, TimeUnit.SECONDS);
        TopicDescription desc = admin.describeTopics(List.of(name)).allTopicNames()
                                     .get(30, TimeUnit.SECONDS).get(name);
        check(desc.partitions().size() == 1, "validate-only grew " + desc);
    }

    /** The cluster-wide default broker resource (an empty name), set, described, removed. */
    static void brokerDefaultConfigs() throws Exception {
        ConfigResource defaults = new ConfigResource(ConfigResource.Type.BROKER, "");
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER,
                                                   String.valueOf(nodeId()));
        Map<ConfigResource, Collection<AlterConfigOp>> set = Map.of(defaults, List.of(
            new AlterConfigOp(new ConfigEntry("log.retention.ms", "3600000"), AlterConfigOp.OpType.SET)));
        admin.incrementalAlterConfigs(set).all().get(30, TimeUnit.SECONDS);
        try {
            ConfigEntry atDefault = settled(defaults, "log.retention.ms", "3600000");
            check(atDefault != null && atDefault.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                  "default resource entry " + atDefault);
            ConfigEntry onBroker = settled(broker, "log.retention.ms", "3600000");
            check(onBroker.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                  "broker entry " + onBroker);
            InvalidRequestException refused = expect(InvalidRequestException.class, () ->
                admin.incrementalAlterConfigs(Map.of(defaults, List.of(new AlterConfigOp(
                    new ConfigEntry("log.dirs", "/elsewhere"), AlterConfigOp.OpType.SET))),
                    new AlterConfigsOptions().validateOnly(true)).all().get(30, TimeUnit.SECONDS));
            check(refused.getMessage().equals("Cannot update these configs dynamically: [log.dirs]"),
                  "message " + refused.getMessage());
        } finally {
            admin.incrementalAlterConfigs(Map.of(defaults, List.of(new AlterConfigOp(
                new ConfigEntry("log.retention.ms", null), AlterConfigOp.OpType.DELETE))))
                 .all().get(30, TimeUnit.SECONDS);
        }
        ConfigEntry back = settled(broker, "log.retention.ms", null);
        check(back.value() == null && back.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG,
              "after delete " + back);
    }

    /** One broker's dynamic config and the topic config that follows it. */
    static void brokerConfigs() throws Exception {
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER,
                                                   String.valueOf(nodeId()));
        String name = unique("sweep-follow");
        create(name, 1, Map.of());
        ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, name);
        admin.incrementalAlterConfigs(Map.of(broker, List.of(new AlterConfigOp(
            new ConfigEntry("message.max.bytes", "2000000"), AlterConfigOp.OpType.SET))))
             .all().get(30, TimeUnit.SECONDS);
        try {
            ConfigEntry entry = settled(topic, "max.message.bytes", "2000000");
            check(entry.source() == ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG,
                  "topic entry " + entry);
            check("message.max.bytes".equals(entry.synonyms().get(0).name()), "synonyms " + entry);
        } finally {
            admin.incrementalAlterConfigs(Map.of(broker, List.of(new AlterConfigOp(
                new ConfigEntry("message.max.bytes", null), AlterConfigOp.OpType.DELETE))))
                 .all().get(30, TimeUnit.SECONDS);
        }
        ConfigEntry back = settled(topic, "max.message.bytes", "1048588");
        check(back.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG, "after delete " + back);
    }

    /** Admin.listConfigResources (ListConfigResources v1): topics, brokers and groups. */
    static void listConfigResources() throws Exception {
        String name = unique("sweep-list");
        create(name, 1, Map.of());
        Collection<ConfigResource> found = admin.listConfigResources(
            Set.of(ConfigResource.Type.TOPIC, ConfigResource.Type.BROKER),
            new ListConfigResourcesOptions()).all().get(30, TimeUnit.SECONDS);
        check(found.contains(new ConfigResource(ConfigResource.Type.TOPIC, name)), "topic in " + found);
        check(found.contains(new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(nodeId()))),
              "broker in " + found);
        // a group of its own with a config (the broker is shared: others may have some)
        ConfigResource group = new ConfigResource(ConfigResource.Type.GROUP, unique("sweep-group"));
        admin.incrementalAlterConfigs(Map.of(group, List.of(new AlterConfigOp(
            new ConfigEntry("consumer.session.timeout.ms", "50000"), AlterConfigOp.OpType.SET))))
            .all().get(30, TimeUnit.SECONDS);
        Collection<ConfigResource> groups = List.of();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!groups.contains(group) && System.nanoTime() < deadline) {  // Kafka: once its
            groups = admin.listConfigResources(                           // metadata has it
                Set.of(ConfigResource.Type.GROUP), new ListConfigResourcesOptions())
                .all().get(30, TimeUnit.SECONDS);
            if (!groups.contains(group)) Thread.sleep(200);
        }
        check(groups.contains(group), "group in " + groups);
        check(groups.stream().allMatch(r -> r.type() == ConfigResource.Type.GROUP),
              "only groups in " + groups);
    }

    /** Admin.describeLogDirs: the log dir and the size of a topic's partitions. */
    static void describeLogDirs() throws Exception {
        String name = unique("sweep-dirs");
        create(name, 2, Map.of());
        int node = nodeId();
        Map<String, org.apache.kafka.clients.admin.LogDirDescription> dirs =
            admin.describeLogDirs(List.of(node)).allDescriptions().get(30, TimeUnit.SECONDS).get(node);
        check(!dirs.isEmpty(), "no log dirs");
        boolean seen = false;
        for (org.apache.kafka.clients.admin.LogDirDescription dir : dirs.values()) {
            check(dir.error() == null, "error in " + dir);
            check(dir.totalBytes().isPresent() && dir.usableBytes().isPresent(), "bytes of " + dir);
            seen |= dir.replicaInfos().keySet().stream().anyMatch(tp -> tp.topic().equals(name));
        }
        check(seen, name + " in no log dir: " + dirs);
    }
}
