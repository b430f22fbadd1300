// Kafka Streams 4.4's suppression buffer changelog codec, for StromStreamsBytes (it lives in
// Kafka's package to reach the package-private BufferValue and the restore-side helper).
//
//   ebuf PRIOR OLD NEW TS OFFSET TOPIC PARTITION HEADERS TIME -> changelog value, as the
//        in-memory buffer logs it (BufferValue + buffer time)
//   dbuf VERSION HEX -> the fields, read as the buffer restores a record whose header v is
//        VERSION (3: deserializeV3)
// Bytes in hex, "-" for null; HEADERS "k=hex,k=-" or "-" for none; TOPIC "-" for "".

package org.apache.kafka.streams.state.internals;

import java.nio.ByteBuffer;
import java.util.HexFormat;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.processor.internals.ProcessorRecordContext;

public final class StromBufferBytes {
    private static final HexFormat HEX = HexFormat.of();

    private StromBufferBytes() { }

    private static byte[] bytes(String hex) {
        return hex.equals("-") ? null : HEX.parseHex(hex);
    }

    private static String hex(byte[] data) {
        return data == null ? "-" : HEX.formatHex(data);
    }

    private static RecordHeaders headers(String spec) {
        RecordHeaders headers = new RecordHeaders();
        if (!spec.equals("-")) {
            for (String item : spec.split(",")) {
                String[] kv = item.split("=", 2);
                headers.add(new RecordHeader(kv[0], bytes(kv[1])));
            }
        }
        return headers;
    }

    private static String headers(Iterable<Header> headers) {
        StringBuilder out = new StringBuilder();
        for (Header h : headers) {
            out.append(out.length() == 0 ? "" : ",").append(h.key()).append('=').append(hex(h.value()));
        }
        return out.length() == 0 ? "-" : out.toString();
    }

    public static String encode(String[] w) {
        ProcessorRecordContext context = new ProcessorRecordContext(Long.parseLong(w[4]),
            Long.parseLong(w[5]), Integer.parseInt(w[7]), w[6].equals("-") ? "" : w[6], headers(w[8]));
        BufferValue value = new BufferValue(bytes(w[1]), bytes(w[2]), bytes(w[3]), context);
        ByteBuffer buffer = value.serialize(Long.BYTES);
        buffer.putLong(Long.parseLong(w[9]));
        return HEX.formatHex(buffer.array());
    }

    public static String decode(String[] w) {
        RecordHeaders changelogHeaders = new RecordHeaders();
        changelogHeaders.add(new RecordHeader("v", new byte[] {Byte.parseByte(w[1])}));
        ConsumerRecord<byte[], byte[]> record = new ConsumerRecord<>("changelog", 0, 0L, 0L,
            org.apache.kafka.common.record.TimestampType.CREATE_TIME, 0, 0, new byte[] {1},
            bytes(w[2]), changelogHeaders, java.util.Optional.empty());
        TimeOrderedKeyValueBufferChangelogDeserializationHelper.DeserializationResult result =
            TimeOrderedKeyValueBufferChangelogDeserializationHelper.deserializeV3(record, Bytes.wrap(new byte[] {1}));
        BufferValue v = result.bufferValue();
        ProcessorRecordContext c = v.context();
        return hex(v.priorValue()) + " " + hex(v.oldValue()) + " " + hex(v.newValue()) + " "
            + c.timestamp() + " " + c.offset() + " " + (c.topic().isEmpty() ? "-" : c.topic()) + " "
            + c.partition() + " " + headers(c.headers()) + " " + result.time();
    }
}
