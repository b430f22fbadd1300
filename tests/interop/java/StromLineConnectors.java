// Two tiny Kafka Connect connectors for tests/interop/test_connect_eos.py, standing in for
// connect-file (not on Maven Central), run by Apache Kafka Connect 4.4 in distributed mode.
//
// LineSource: the lines of a text file (config "file"), in order, to "topic"; its source
// offset is the number of lines already sent ({"line": n} under {"file": path}), read back
// at start, so with exactly.once.source.support=enabled a task that moves to another
// worker resumes exactly where the last committed transaction ended.
//
// LineSink: appends "partition<TAB>offset<TAB>value" to a file (config "file"), one write
// and flush a record. It keeps its own offsets, as an exactly-once sink must: at open it
// reads the file (dropping a torn last line a kill left), seeks each partition past the
// last offset written there, and skips any redelivered record it has already written.
//
// Configured with plain strings (StringConverter): no schemas.

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.sink.SinkConnector;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.apache.kafka.connect.source.ExactlyOnceSupport;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

public class StromLineConnectors {
    static final ConfigDef SOURCE = new ConfigDef()
        .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "File to read.")
        .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Topic to write.");
    static final ConfigDef SINK = new ConfigDef()
        .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "File to append to.");

    public static class LineSourceConnector extends SourceConnector {
        private Map<String, String> props;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { this.props = props; }
        @Override public Class<? extends Task> taskClass() { return LineSourceTask.class; }
        @Override public List<Map<String, String>> taskConfigs(int maxTasks) {
            return Collections.singletonList(props);
        }
        @Override public void stop() { }
        @Override public ConfigDef config() { return SOURCE; }
        @Override public ExactlyOnceSupport exactlyOnceSupport(Map<String, String> props) {
            return ExactlyOnceSupport.SUPPORTED;
        }
    }

    public static class LineSourceTask extends SourceTask {
        private String file;
        private String topic;
        private long sent;
        private Map<String, String> partition;

        @Override public String version() { return "1.0"; }

        @Override public void start(Map<String, String> props) {
            file = props.get("file");
            topic = props.get("topic");
            partition = Collections.singletonMap("file", file);
            Map<String, Object> last = context.offsetStorageReader().offset(partition);
            sent = last == null ? 0 : ((Number) last.get("line")).longValue();
        }

        @Override public List<SourceRecord> poll() throws InterruptedException {
            List<String> lines;
            try {
                lines = Files.readAllLines(Paths.get(file), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new ConnectException(e);
            }
            List<SourceRecord> out = new ArrayList<>();
            while (sent < lines.size() && out.size() < 20) {
                String line = lines.get((int) sent);
                sent++;
                out.add(new SourceRecord(partition, Collections.singletonMap("line", sent), topic, 0,
                                         Schema.STRING_SCHEMA, line));
            }
            if (out.isEmpty()) {
                Thread.sleep(50);
                return null;
            }
            return out;
        }

        @Override public void stop() { }
    }

    public static class LineSinkConnector extends SinkConnector {
        private Map<String, String> props;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { this.props = props; }
        @Override public Class<? extends Task> taskClass() { return LineSinkTask.class; }
        @Override public List<Map<String, String>> taskConfigs(int maxTasks) {
            return Collections.singletonList(props);
        }
        @Override public void stop() { }
        @Override public ConfigDef config() { return SINK; }
    }

    public static class LineSinkTask extends SinkTask {
        private Path file;
        private final Map<Integer, Long> written = new HashMap<>();

        @Override public String version() { return "1.0"; }

        @Override public void start(Map<String, String> props) {
            file = Paths.get(props.get("file"));
        }

        @Override public void open(Collection<TopicPartition> partitions) {
            written.clear();
            try {
                dropTornLine();
                if (Files.exists(file)) {
                    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                        String[] parts = line.split("\t", 3);
                        written.merge(Integer.parseInt(parts[0]), Long.parseLong(parts[1]), Math::max);
                    }
                }
            } catch (IOException e) {
                throw new ConnectException(e);
            }
            for (TopicPartition tp : partitions) {
                Long last = written.get(tp.partition());
                if (last != null) {
                    context.offset(tp, last + 1);
                }
            }
        }

        private void dropTornLine() throws IOException {
            if (!Files.exists(file)) {
                return;
            }
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
                long end = raf.length();
                long keep = end;
                while (keep > 0) {
                    raf.seek(keep - 1);
                    if (raf.read() == '\n') {
                        break;
                    }
                    keep--;
                }
                if (keep != end) {
                    raf.setLength(keep);
                }
            }
        }

        @Override public void put(Collection<SinkRecord> records) {
            for (SinkRecord r : records) {
                long last = written.getOrDefault(r.kafkaPartition(), -1L);
                if (r.kafkaOffset() <= last) {
                    continue;  // redelivered: already in the file
                }
                String line = r.kafkaPartition() + "\t" + r.kafkaOffset() + "\t" + r.value() + "\n";
                try {
                    Files.write(file, line.getBytes(StandardCharsets.UTF_8),
                                StandardOpenOption.CREATE, StandardOpenOption.APPEND,
                                StandardOpenOption.SYNC);
                } catch (IOException e) {
                    throw new ConnectException(e);
                }
                written.put(r.kafkaPartition(), r.kafkaOffset());
            }
        }

        @Override public void stop() { }
    }
}
