// Two small connectors for running Apache Kafka Connect (Java) beside Strom Connect in the
// REST conformance test: Kafka's connect-file is not on Maven Central, so these stand in.
// CountingSource writes 0, 1, 2, ... (one a poll, offset {"n": n} under {"source": "count"});
// DiscardSink consumes and drops. tests/connect/conformance_plugins.py has the Python twins.
package strom.conformance;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.sink.SinkConnector;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

public class ConformanceConnectors {
    static final ConfigDef SOURCE = new ConfigDef()
        .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "Topic to write to.");

    public static class CountingSourceConnector extends SourceConnector {
        private Map<String, String> props;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { this.props = props; }
        @Override public Class<? extends Task> taskClass() { return CountingSourceTask.class; }
        @Override public List<Map<String, String>> taskConfigs(int maxTasks) {
            return Collections.singletonList(props);
        }
        @Override public void stop() { }
        @Override public ConfigDef config() { return SOURCE; }
    }

    public static class CountingSourceTask extends SourceTask {
        private String topic;
        private long next;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) {
            topic = props.get("topic");
            Map<String, Object> last = context.offsetStorageReader().offset(Collections.singletonMap("source", "count"));
            next = last == null ? 0 : ((Number) last.get("n")).longValue() + 1;
        }
        @Override public List<SourceRecord> poll() throws InterruptedException {
            Thread.sleep(100);
            long n = next++;
            List<SourceRecord> out = new ArrayList<>();
            out.add(new SourceRecord(Collections.singletonMap("source", "count"), Collections.singletonMap("n", n),
                                     topic, null, null, null, Schema.INT64_SCHEMA, n));
            return out;
        }
        @Override public void stop() { }
    }

    public static class DiscardSinkConnector extends SinkConnector {
        private Map<String, String> props;
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { this.props = props; }
        @Override public Class<? extends Task> taskClass() { return DiscardSinkTask.class; }
        @Override public List<Map<String, String>> taskConfigs(int maxTasks) {
            return Collections.singletonList(props);
        }
        @Override public void stop() { }
        @Override public ConfigDef config() { return new ConfigDef(); }
    }

    public static class DiscardSinkTask extends SinkTask {
        @Override public String version() { return "1.0"; }
        @Override public void start(Map<String, String> props) { }
        @Override public void put(Collection<SinkRecord> records) { }
        @Override public void stop() { }
    }
}
