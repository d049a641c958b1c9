using System.Buffers.Binary;
using CsCheck;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Netlink.Tests;

/// <summary>
/// Whatever bytes arrive, the readers and the connection loop throw NetlinkDecodeException (or, for an error the
/// bytes report, NetlinkException) and nothing else: no IndexOutOfRange, no overflow, no endless loop.
/// </summary>
public sealed class NetlinkDecoderFuzzTests
{
    const uint Port = 0x5CE1;

    /// <summary>Random bytes, and random bytes that start like a plausible header (a length near the real one).</summary>
    static readonly Gen<byte[]> Bytes = Gen.OneOf(
        Gen.Byte.Array[0, 300],
        from body in Gen.Byte.Array[0, 200]
        from slack in Gen.Int[-8, 8]
        from type in Gen.UShort
        select WithHeader(body, slack, type));

    /// <summary>An nlattr-shaped prefix whose length is off by <paramref name="slack"/>, then the body.</summary>
    static byte[] WithHeader(byte[] body, int slack, ushort type)
    {
        var bytes = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)Math.Clamp(bytes.Length + slack, 0, ushort.MaxValue));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), type);
        body.CopyTo(bytes, 4);
        return bytes;
    }

    /// <summary>Reads every attribute with every getter, nests included, as a decoder trying all interpretations would.</summary>
    static int Walk(ReadOnlySpan<byte> attributes, int depth)
    {
        int seen = 0;
        var reader = new AttributeReader(attributes);
        while (true)
        {
            try
            {
                if (!reader.Next())
                    return seen;
            }
            catch (NetlinkDecodeException)
            {
                return seen;
            }
            seen++;
            Assert.True(reader.Value.Length <= attributes.Length - NetlinkAlign.AttributeHeaderLength);
            Try(reader, static r => r.GetByte());
            Try(reader, static r => r.GetUInt16());
            Try(reader, static r => r.GetUInt16BigEndian());
            Try(reader, static r => r.GetUInt32());
            Try(reader, static r => r.GetInt32());
            Try(reader, static r => r.GetUInt64());
            Try(reader, static r => r.GetString());
            Try(reader, static r => r.GetAddress());
            if (depth < 4)
                Walk(reader.Value, depth + 1);
        }
    }

    delegate object Getter(AttributeReader reader);

    static void Try(AttributeReader reader, Getter get)
    {
        try
        {
            get(reader);
        }
        catch (NetlinkDecodeException)
        {
        }
    }

    [Fact]
    public void Attribute_reader_only_throws_decode_errors() =>
        Bytes.Sample(bytes => { Walk(bytes, 0); }, iter: 20_000);

    [Fact]
    public void Message_reader_only_throws_decode_errors_and_stays_inside_the_datagram() =>
        Gen.OneOf(Bytes, Bytes.Array[1, 4].Select(parts => parts.SelectMany(p => p).ToArray())).Sample(bytes =>
        {
            var reader = new MessageReader(bytes);
            int consumed = 0;
            try
            {
                while (reader.Next())
                {
                    consumed += NetlinkAlign.MessageHeaderLength + reader.Payload.Length;
                    Assert.True(consumed <= bytes.Length, $"{consumed} bytes read from {bytes.Length}");
                    Walk(reader.Payload, 0);
                    _ = NetlinkErrorOrDecodeFailure(reader.Payload, reader.Flags);
                }
            }
            catch (NetlinkDecodeException)
            {
            }
        }, iter: 20_000);

    static bool NetlinkErrorOrDecodeFailure(ReadOnlySpan<byte> payload, NetlinkMessageFlags flags)
    {
        try
        {
            NetlinkError.Decode(payload, flags);
            return true;
        }
        catch (NetlinkDecodeException)
        {
            return false;
        }
    }

    /// <summary>Well-formed attributes decode back to exactly what was encoded (flag bits masked off the type).</summary>
    [Fact]
    public void Encoded_attributes_decode_to_what_was_written() =>
        Gen.Select(Gen.UShort, Gen.Byte.Array[0, 40]).Array[0, 8].Sample(attributes =>
        {
            var bytes = attributes.SelectMany(a => NetlinkFrames.Attribute(a.Item1, a.Item2)).ToArray();
            var reader = new AttributeReader(bytes);
            foreach (var (type, value) in attributes)
            {
                Assert.True(reader.Next());
                Assert.Equal(type & 0x3FFF, reader.Type);
                Assert.Equal((type & NetlinkWriter.NestedFlag) != 0, reader.IsNested);
                Assert.Equal(value, reader.Value.ToArray());
            }
            Assert.False(reader.Next());
        });

    /// <summary>
    /// The request/reply loop fed random messages with the right sequence number, then NLMSG_DONE: it returns or throws
    /// a netlink exception, never anything else, and never reads past the DONE.
    /// </summary>
    [Fact]
    public void Connection_loop_only_throws_netlink_errors_on_random_replies()
    {
        var message = from type in Gen.OneOf(Gen.Const((ushort)NetlinkMessageType.NewLink), Gen.Const((ushort)NetlinkMessageType.Error),
                          Gen.Const((ushort)NetlinkMessageType.Done), Gen.Const((ushort)NetlinkMessageType.Overrun), Gen.UShort)
                      from flags in Gen.UShort
                      from payload in Bytes
                      from truncate in Gen.Int[0, 3]
                      select (type, flags, payload, truncate);
        Gen.Select(message.Array[0, 5], Gen.Bool).Sample(t =>
        {
            var (messages, oneDatagram) = t;
            // A reply flagged NLM_F_DUMP_INTR makes the loop ask again: script every attempt.
            var kernel = new ScriptedTransport(Port);
            for (int attempt = 0; attempt < NetlinkConnection.DumpAttempts; attempt++)
                kernel.OnRequest(r =>
            {
                var frames = messages.Select(m =>
                {
                    var frame = NetlinkFrames.Message((NetlinkMessageType)m.type, (NetlinkMessageFlags)m.flags, r.Sequence, Port, m.payload);
                    // A datagram cut short (its header claims more than arrived); packed with others, a cut frame
                    // would swallow the DONE behind it and the real socket would wait for more.
                    return m.truncate == 0 && !oneDatagram ? frame[..Math.Max(0, frame.Length - 1 - m.payload.Length / 2)] : frame;
                }).Append(NetlinkFrames.Done(r.Sequence, Port)).ToArray();
                return oneDatagram ? [NetlinkFrames.Datagram(frames)] : frames;
                });
            using var connection = new NetlinkConnection(kernel);
            try
            {
                using var w = new NetlinkWriter(NetlinkMessageType.GetLink, NetlinkMessageFlags.Dump);
                new LinkHeader(0, 0, 0, 0, 0).Write(w.Reserve(LinkHeader.Size));
                connection.Execute(w, "list links");
            }
            catch (NetlinkException)
            {
            }
            catch (NetlinkDecodeException)
            {
            }
        }, iter: 5_000);
    }
}
