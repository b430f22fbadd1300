// Java kafka-clients transactions against a broker (Strom, and Apache Kafka as the oracle):
// offsets sent to transactions (committed and aborted), a zombie producer fenced by a second
// instance with the same transactional.id, the Admin's listTransactions/describeTransactions,
// and records produced in transactions read with isolation.level=read_committed.
//
//   java -cp 'classes:<kafka lib>/*' StromTransactions <bootstrap> <check>...
//
// checks: txn-offsets, txn-fence, txn-admin, txn-produce, txn-zombie, txn-timeout. Each prints "PASS <check>" or a
// stack trace; the exit code is the number of failed checks. Run by tests/interop.

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class StromTransactions {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static String bootstrap;

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        int failed = 0;
        for (int i = 1; i < args.length; i++) {
            String check = args[i];
            try {
                switch (check) {
                    case "txn-offsets": offsets(); break;
                    case "txn-fence": fence(); break;
                    case "txn-admin": admin(); break;
                    case "txn-produce": produce(); break;
                    case "txn-zombie": zombie(); break;
                    case "txn-timeout": timeout(); break;
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

    static void eq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
        }
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin0() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        return Admin.create(p);
    }

    static KafkaProducer<String, String> transactional(String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        return new KafkaProducer<>(p);
    }

    static String topic(Admin admin, String prefix) throws Exception {
        String name = unique(prefix);
        admin.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return name;
    }

    /** The group's committed offset once no transaction holds it (require_stable), or -1. */
    static long committed(Admin admin, String group, TopicPartition tp) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> offsets = admin
            .listConsumerGroupOffsets(group, new ListConsumerGroupOffsetsOptions().requireStable(true))
            .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        OffsetAndMetadata found = offsets.get(tp);
        return found == null ? -1 : found.offset();
    }

    static long settled(Admin admin, String group, TopicPartition tp, long expected) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        long seen = committed(admin, group, tp);
        while (seen != expected && System.nanoTime() < deadline) {
            Thread.sleep(100);
            seen = committed(admin, group, tp);
        }
        return seen;
    }

    // ---------------------------------------------------------------- checks

    static void offsets() throws Exception {
        try (Admin admin = admin0();
             KafkaProducer<String, String> producer = transactional(unique("java-txn"))) {
            TopicPartition tp = new TopicPartition(topic(admin, "java-txn-offsets"), 0);
            String group = unique("java-txn-group");
            ConsumerGroupMetadata metadata = new ConsumerGroupMetadata(group);
            producer.initTransactions();
            producer.beginTransaction();
            producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(42)), metadata);
            producer.commitTransaction();
            eq(42L, settled(admin, group, tp, 42), "offset committed in a transaction");
            producer.beginTransaction();
            producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(99)), metadata);
            producer.abortTransaction();
            eq(42L, settled(admin, group, tp, 42), "offset of an aborted transaction");
        }
    }

    static void fence() throws Exception {
        String txnId = unique("java-fence");
        try (Admin admin = admin0()) {
            TopicPartition tp = new TopicPartition(topic(admin, "java-txn-fence"), 0);
            String group = unique("java-fence-group");
            ConsumerGroupMetadata metadata = new ConsumerGroupMetadata(group);
            KafkaProducer<String, String> zombie = transactional(txnId);
            zombie.initTransactions();
            zombie.beginTransaction();
            zombie.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(7)), metadata);
            try (KafkaProducer<String, String> successor = transactional(txnId)) {
                successor.initTransactions();  // aborts the zombie's transaction
                boolean fenced = false;
                try {
                    zombie.commitTransaction();
                } catch (ProducerFencedException e) {
                    fenced = true;
                } catch (KafkaException e) {
                    fenced = e.getCause() instanceof ProducerFencedException;
                }
                eq(true, fenced, "the zombie's commit is fenced");
                zombie.close(Duration.ZERO);
                eq(-1L, committed(admin, group, tp), "the zombie's offsets were aborted");
                successor.beginTransaction();
                successor.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(8)), metadata);
                successor.commitTransaction();
                eq(8L, settled(admin, group, tp, 8), "the successor's offsets");
            }
        }
    }

    static void admin() throws Exception {
        String txnId = unique("java-admin");
        try (Admin admin = admin0();
             KafkaProducer<String, String> producer = transactional(txnId)) {
            TopicPartition tp = new TopicPartition(topic(admin, "java-txn-admin"), 0);
            producer.initTransactions();
            producer.beginTransaction();
            producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(1)),
                                              new ConsumerGroupMetadata(unique("java-admin-group")));
            TransactionDescription described = admin.describeTransactions(List.of(txnId))
                .description(txnId).get(30, TimeUnit.SECONDS);
            eq(TransactionState.ONGOING, described.state(), "state while open");
            eq(60000L, (long) described.transactionTimeoutMs(), "timeout");
            eq(1, described.topicPartitions().size(), "partitions (the group's offsets partition)");
            eq("__consumer_offsets", described.topicPartitions().iterator().next().topic(),
               "the offsets partition joined the transaction");
            boolean listed = false;
            for (TransactionListing l : admin.listTransactions().all().get(30, TimeUnit.SECONDS)) {
                if (l.transactionalId().equals(txnId)) {
                    listed = true;
                    eq(TransactionState.ONGOING, l.state(), "listed state");
                    eq(described.producerId(), l.producerId(), "listed producer id");
                }
            }
            eq(true, listed, "listTransactions shows the open transaction");
            producer.commitTransaction();
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            TransactionState state;
            do {
                state = admin.describeTransactions(List.of(txnId)).description(txnId)
                    .get(30, TimeUnit.SECONDS).state();
            } while (state != TransactionState.COMPLETE_COMMIT && System.nanoTime() < deadline);
            eq(TransactionState.COMPLETE_COMMIT, state, "state after the commit");
        }
    }

    static void produce() throws Exception {
        try (Admin admin = admin0();
             KafkaProducer<String, String> producer = transactional(unique("java-produce"))) {
            String name = topic(admin, "java-txn-produce");
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(name, "k", "committed-1"));
            producer.send(new ProducerRecord<>(name, "k", "committed-2"));
            producer.commitTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(name, "k", "aborted"));
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(name, "k", "committed-3"));
            producer.commitTransaction();
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
                TopicPartition tp = new TopicPartition(name, 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                List<String> seen = new ArrayList<>();
                long deadline = System.nanoTime() + TIMEOUT.toNanos();
                while (seen.size() < 3 && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                        seen.add(r.value());
                    }
                }
                eq(List.of("committed-1", "committed-2", "committed-3"), seen,
                   "read_committed sees only committed records");
            }
        }
    }

    static List<String> readCommitted(String name, int expected) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        List<String> seen = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(name, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (seen.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    seen.add(r.value());
                }
            }
            // anything more would show up within a few more polls
            for (int i = 0; i < 5; i++) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    seen.add(r.value());
                }
            }
        }
        return seen;
    }

    /** A zombie whose transaction is open when a new instance starts: its records are
     *  aborted, its next send and commit are fenced, the new instance's records commit. */
    static void zombie() throws Exception {
        String txnId = unique("java-zombie");
        try (Admin admin = admin0()) {
            String name = topic(admin, "java-txn-zombie");
            KafkaProducer<String, String> zombie = transactional(txnId);
            zombie.initTransactions();
            zombie.beginTransaction();
            zombie.send(new ProducerRecord<>(name, "k", "zombie-1")).get(30, TimeUnit.SECONDS);
            try (KafkaProducer<String, String> successor = transactional(txnId)) {
                successor.initTransactions();
                boolean fenced = false;
                try {
                    zombie.send(new ProducerRecord<>(name, "k", "zombie-2")).get(30, TimeUnit.SECONDS);
                    zombie.commitTransaction();
                } catch (ProducerFencedException e) {
                    fenced = true;
                } catch (ExecutionException | KafkaException e) {
                    Throwable cause = e.getCause();
                    fenced = e instanceof ProducerFencedException
                        || cause instanceof ProducerFencedException
                        || (cause != null && cause.getClass().getSimpleName().equals("InvalidProducerEpochException"));
                }
                eq(true, fenced, "the zombie is fenced");
                zombie.close(Duration.ZERO);
                successor.beginTransaction();
                successor.send(new ProducerRecord<>(name, "k", "successor"));
                successor.commitTransaction();
            }
            eq(List.of("successor"), readCommitted(name, 1), "read_committed after the fencing");
        }
    }

    /** A transaction left open past its timeout is aborted by the coordinator: its records
     *  never become visible, the producer's commit fails (fenced under transaction version
     *  1, abortable under 2), and a later transaction of the same id commits. */
    static void timeout() throws Exception {
        String txnId = unique("java-timeout");
        try (Admin admin = admin0()) {
            String name = topic(admin, "java-txn-timeout");
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 2000);
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
            KafkaProducer<String, String> producer = new KafkaProducer<>(p);
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(name, "k", "timed-out")).get(30, TimeUnit.SECONDS);
            // the coordinator looks for timed-out transactions every 10 s (Kafka's default)
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            TransactionState state = TransactionState.ONGOING;
            while (state == TransactionState.ONGOING && System.nanoTime() < deadline) {
                Thread.sleep(250);
                state = admin.describeTransactions(List.of(txnId)).description(txnId)
                    .get(30, TimeUnit.SECONDS).state();
            }
            eq(true, state != TransactionState.ONGOING, "the coordinator ended the transaction");
            boolean failed = false;
            try {
                producer.commitTransaction();
            } catch (KafkaException e) {
                failed = true;
            }
            eq(true, failed, "the commit of a timed-out transaction fails");
            try {
                producer.abortTransaction();
            } catch (KafkaException e) {
                producer.close(Duration.ZERO);  // fenced (transaction version 1): start afresh
                producer = new KafkaProducer<>(p);
                producer.initTransactions();
            }
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(name, "k", "after"));
            producer.commitTransaction();
            producer.close();
            eq(List.of("after"), readCommitted(name, 1), "read_committed after the timeout");
        }
    }
}
