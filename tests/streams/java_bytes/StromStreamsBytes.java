// Kafka Streams 4.4's own classes encoding and decoding the bytes Strom Streams shares with
// Java instances, for tests/streams/test_streams_java_bytes.py. One command a line on stdin,
// one answer a line on stdout; bytes in hex, "-" for null, String serdes for keys/values.
//
//   hash HEX                       -> Murmur3.hash128 as 32 hex digits (two big-endian longs)
//   esub INSTR HASH PK PARTITION   -> SubscriptionWrapper (current version) serialized
//   dsub HEX                       -> "VERSION INSTR HASH PK PARTITION"
//   eresp HASH VALUE               -> SubscriptionResponseWrapper (current version) serialized
//   dresp HEX                      -> "VERSION HASH VALUE"
//   ebuf ... / dbuf ...            -> the suppression buffer changelog (StromBufferBytes)

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.SubscriptionResponseWrapper;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.SubscriptionResponseWrapperSerde;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.SubscriptionWrapper;
import org.apache.kafka.streams.kstream.internals.foreignkeyjoin.SubscriptionWrapperSerde;
import org.apache.kafka.streams.state.internals.Murmur3;

public final class StromStreamsBytes {
    private static final HexFormat HEX = HexFormat.of();

    private StromStreamsBytes() { }

    private static byte[] bytes(String hex) {
        return HEX.parseHex(hex);
    }

    private static String hash(long[] h) {
        return h == null ? "-" : HEX.formatHex(ByteBuffer.allocate(16).putLong(h[0]).putLong(h[1]).array());
    }

    private static long[] longs(String hex) {
        if (hex.equals("-")) {
            return null;
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes(hex));
        return new long[] {buf.getLong(), buf.getLong()};
    }

    private static String orDash(Object o) {
        return o == null ? "-" : o.toString();
    }

    private static String answer(String[] w) {
        Serde<String> s = Serdes.String();
        SubscriptionWrapperSerde<String> subs = new SubscriptionWrapperSerde<>(() -> "t", s);
        SubscriptionResponseWrapperSerde<String> resps = new SubscriptionResponseWrapperSerde<>(s);
        switch (w[0]) {
            case "hash":
                return hash(Murmur3.hash128(bytes(w.length > 1 ? w[1] : "")));
            case "esub":
                SubscriptionWrapper<String> sub = new SubscriptionWrapper<>(longs(w[2]),
                    SubscriptionWrapper.Instruction.fromValue(Byte.parseByte(w[1])), w[3],
                    Integer.valueOf(w[4]));
                return HEX.formatHex(subs.serializer().serialize("t", new RecordHeaders(), sub));
            case "dsub":
                SubscriptionWrapper<String> d = subs.deserializer().deserialize("t", new RecordHeaders(), bytes(w[1]));
                return d.version() + " " + d.instruction().value() + " " + hash(d.hash()) + " "
                    + d.primaryKey() + " " + orDash(d.primaryPartition());
            case "eresp":
                SubscriptionResponseWrapper<String> r = new SubscriptionResponseWrapper<>(
                    longs(w[1]), w[2].equals("-") ? null : w[2], 0);
                return HEX.formatHex(resps.serializer().serialize("t", new RecordHeaders(), r));
            case "dresp":
                SubscriptionResponseWrapper<String> e = resps.deserializer().deserialize("t", new RecordHeaders(), bytes(w[1]));
                return e.version() + " " + hash(e.originalValueHash()) + " " + orDash(e.foreignValue());
            case "ebuf":
                return org.apache.kafka.streams.state.internals.StromBufferBytes.encode(w);
            case "dbuf":
                return org.apache.kafka.streams.state.internals.StromBufferBytes.decode(w);
            default:
                throw new IllegalArgumentException(w[0]);
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            System.out.println(answer(line.trim().split(" ")));
        }
    }
}
