// File source and sink for Apache Kafka Connect (Java) in bench/connect.py: Kafka's
// connect-file jar is not on Maven Central, so these stand in for FileStreamSource/Sink with
// the same behaviour as Strom's Python ones. Source: each line of `file` becomes a STRING
// record on `topic`, at most `batch.size` (2000) a poll, offset {"position": bytes} under
// {"filename": file}. Sink: each value is appended to `file` as a line, each batch handed
// to the OS at the end of put(); flush() syncs the file.
package strom.bench;

import java.io.BufferedOutputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.sink.SinkConnector;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

public class BenchFileConnectors {
    static final ConfigDef SOURCE = new ConfigDef()
        .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Input file.")
        .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Topic to write to.")
        .define("batch.size", ConfigDef.Type.INT, 2000, ConfigDef.Importance.LOW, "Lines a poll.");
    static final ConfigDef SINK = new ConfigDef()
        .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Output file.");

    public static class BenchFileSourceConnector extends SourceConnector {
        private Map<String, String> props;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { this.props = props; }
        @Override public Class<? extends Task> taskClass() { return BenchFileSourceTask.class; }
        @Override public List<Map<String, String>> taskConfigs(int maxTasks) {
            return Collections.singletonList(props);
        }
        @Override public void stop() { }
        @Override public ConfigDef config() { return SOURCE; }
    }

    public static class BenchFileSourceTask extends SourceTask {
        private String filename;
        private String topic;
        private int batchSize;
        private FileInputStream in;
        private long position;
        private byte[] buffer = new byte[64 * 1024];
        private int start;
        private int end;

        @Override public String version() { return "1.0"; }

        @Override public void start(Map<String, String> props) {
            filename = props.get("file");
            topic = props.get("topic");
            batchSize = Integer.parseInt(props.getOrDefault("batch.size", "2000"));
            Map<String, Object> stored = context.offsetStorageReader()
                .offset(Collections.singletonMap("filename", filename));
            position = stored == null ? 0 : ((Number) stored.get("position")).longValue();
            try {
                in = new FileInputStream(filename);
                in.getChannel().position(position);
            } catch (IOException e) {
                throw new ConnectException(e);
            }
        }

        @Override public List<SourceRecord> poll() throws InterruptedException {
            List<SourceRecord> records = new ArrayList<>();
            while (records.size() < batchSize) {
                int newline = -1;
                for (int i = start; i < end; i++) {
                    if (buffer[i] == '\n') { newline = i; break; }
                }
                if (newline < 0) {
                    if (!fill()) break;
                    continue;
                }
                String line = new String(buffer, start, newline - start, StandardCharsets.UTF_8);
                position += newline - start + 1;
                start = newline + 1;
                records.add(new SourceRecord(Collections.singletonMap("filename", filename),
                    Collections.singletonMap("position", position), topic, null, null, null,
                    Schema.STRING_SCHEMA, line));
            }
            if (records.isEmpty()) {
                Thread.sleep(50);
                return null;
            }
            return records;
        }

        /** Moves the partial line to the front and reads more; false at the end of the file. */
        private boolean fill() {
            System.arraycopy(buffer, start, buffer, 0, end - start);
            end -= start;
            start = 0;
            if (end == buffer.length) buffer = java.util.Arrays.copyOf(buffer, buffer.length * 2);
            try {
                int read = in.read(buffer, end, buffer.length - end);
                if (read <= 0) return false;
                end += read;
                return true;
            } catch (IOException e) {
                throw new ConnectException(e);
            }
        }

        @Override public void stop() {
            try { if (in != null) in.close(); } catch (IOException e) { /* closing */ }
        }
    }

    public static class BenchFileSinkConnector extends SinkConnector {
        private Map<String, String> props;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { this.props = props; }
        @Override public Class<? extends Task> taskClass() { return BenchFileSinkTask.class; }
        @Override public List<Map<String, String>> taskConfigs(int maxTasks) {
            return Collections.singletonList(props);
        }
        @Override public void stop() { }
        @Override public ConfigDef config() { return SINK; }
    }

    public static class BenchFileSinkTask extends SinkTask {
        private FileOutputStream file;
        private BufferedOutputStream out;

        @Override public String version() { return "1.0"; }

        @Override public void start(Map<String, String> props) {
            try {
                file = new FileOutputStream(props.get("file"), true);
                out = new BufferedOutputStream(file, 64 * 1024);
            } catch (IOException e) {
                throw new ConnectException(e);
            }
        }

        @Override public void put(Collection<SinkRecord> records) {
            try {
                for (SinkRecord record : records) {
                    out.write(String.valueOf(record.value()).getBytes(StandardCharsets.UTF_8));
                    out.write('\n');
                }
                out.flush();  // to the OS at the end of each batch (Kafka's PrintStream: each line)
            } catch (IOException e) {
                throw new ConnectException(e);
            }
        }

        @Override public void flush(Map<TopicPartition, OffsetAndMetadata> offsets) {
            try {
                out.flush();
                file.getFD().sync();
            } catch (IOException e) {
                throw new ConnectException(e);
            }
        }

        @Override public void stop() {
            try { out.flush(); out.close(); } catch (IOException e) { /* closing */ }
        }
    }
}
