using System.Buffers.Binary;

namespace IpvlanCni.Netlink;

/// <summary>One request the code under test sent to a <see cref="ScriptedTransport"/>.</summary>
public sealed record ScriptedRequest(NetlinkMessageType Type, NetlinkMessageFlags Flags, uint Sequence, uint PortId, byte[] Payload, byte[] Bytes);

/// <summary>
/// A fake kernel for tests: records every request and answers each with the datagrams its next scripted
/// responder returns. A request with nothing scripted fails the test instead of hanging.
/// <code>
/// var kernel = new ScriptedTransport().ReplyAck();
/// new RouteClient(kernel).DeleteLink(7);
/// Assert.Equal(NetlinkMessageType.DeleteLink, kernel.Requests[0].Type);
/// </code>
/// </summary>
public sealed class ScriptedTransport(uint portId = 0x5CE1) : INetlinkTransport
{
    readonly Queue<Func<ScriptedRequest, IEnumerable<byte[]>>> _responders = new();
    readonly Queue<byte[]> _datagrams = new();

    public uint PortId { get; } = portId;
    public List<ScriptedRequest> Requests { get; } = [];
    public bool Disposed { get; private set; }

    /// <summary>Answers the next request with whatever datagrams <paramref name="respond"/> returns.</summary>
    public ScriptedTransport OnRequest(Func<ScriptedRequest, IEnumerable<byte[]>> respond)
    {
        _responders.Enqueue(respond);
        return this;
    }

    public ScriptedTransport ReplyAck() => OnRequest(r => [NetlinkFrames.Ack(r.Sequence, PortId)]);

    public ScriptedTransport ReplyError(int errno, string? extendedAck = null) =>
        OnRequest(r => [NetlinkFrames.Error(r.Sequence, PortId, errno, extendedAck)]);

    /// <summary>A dump the kernel ends with an error: NLMSG_DONE carrying -errno and the ext-ack text.</summary>
    public ScriptedTransport ReplyFailedDump(int errno, string? extendedAck = null) =>
        OnRequest(r => [NetlinkFrames.FailedDump(r.Sequence, PortId, errno, extendedAck)]);

    /// <summary>The reply payloads (each one message, NLM_F_MULTI, one datagram each), then NLMSG_DONE.</summary>
    public ScriptedTransport ReplyDump(NetlinkMessageType type, params byte[][] payloads) =>
        OnRequest(r => [.. payloads.Select(p => NetlinkFrames.Message(type, NetlinkMessageFlags.Multi, r.Sequence, PortId, p)), NetlinkFrames.Done(r.Sequence, PortId)]);

    /// <summary>One reply message followed by the ACK (a GET sent with NLM_F_ACK).</summary>
    public ScriptedTransport ReplyGet(NetlinkMessageType type, byte[] payload) =>
        OnRequest(r => [NetlinkFrames.Message(type, NetlinkMessageFlags.None, r.Sequence, PortId, payload), NetlinkFrames.Ack(r.Sequence, PortId)]);

    public void Send(ReadOnlySpan<byte> message)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        var reader = new MessageReader(message);
        if (!reader.Next())
            throw new InvalidOperationException("empty request");
        var request = new ScriptedRequest(reader.Type, reader.Flags, reader.Sequence, reader.PortId, reader.Payload.ToArray(), message.ToArray());
        Requests.Add(request);
        if (!_responders.TryDequeue(out var respond))
            throw new InvalidOperationException($"unscripted request #{Requests.Count}: {request.Type} {request.Flags}");
        foreach (var datagram in respond(request))
            _datagrams.Enqueue(datagram);
    }

    public int Receive(Span<byte> buffer, bool peek)
    {
        if (!_datagrams.TryPeek(out var datagram))
            throw new InvalidOperationException("receive with no scripted datagram left (the real socket would block)");
        if (peek)
            return datagram.Length;
        _datagrams.Dequeue();
        int count = Math.Min(buffer.Length, datagram.Length);
        datagram.AsSpan(0, count).CopyTo(buffer);
        return count;
    }

    public void Dispose() => Disposed = true;
}

/// <summary>Builds raw netlink datagrams the way the kernel would: for scripted replies and golden tests.</summary>
public static class NetlinkFrames
{
    public static byte[] Message(NetlinkMessageType type, NetlinkMessageFlags flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
    {
        int header = NetlinkAlign.MessageHeaderLength;
        var bytes = new byte[NetlinkAlign.Message(header + payload.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)(header + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), (ushort)type);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(6), (ushort)flags);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), portId);
        payload.CopyTo(bytes.AsSpan(header));
        return bytes;
    }

    public static byte[] Ack(uint sequence, uint portId) => Error(sequence, portId, 0, null);

    /// <summary>NLMSG_ERROR as a NETLINK_CAP_ACK socket sees it: -errno, the request header, then the extended-ack TLVs.</summary>
    public static byte[] Error(uint sequence, uint portId, int errno, string? extendedAck)
    {
        var flags = NetlinkMessageFlags.Capped;
        var payload = new List<byte>(64);
        payload.AddRange(BitConverter.GetBytes(-errno));
        payload.AddRange(new byte[NetlinkAlign.MessageHeaderLength]); // the request's header; nobody reads it
        if (extendedAck is not null)
        {
            flags |= NetlinkMessageFlags.AckTlvs;
            payload.AddRange(Attribute((ushort)ExtendedAckAttribute.Message, [.. System.Text.Encoding.UTF8.GetBytes(extendedAck), 0]));
        }
        return Message(NetlinkMessageType.Error, flags, sequence, portId, payload.ToArray());
    }

    public static byte[] Done(uint sequence, uint portId, NetlinkMessageFlags flags = NetlinkMessageFlags.Multi) =>
        Message(NetlinkMessageType.Done, flags, sequence, portId, new byte[4]);

    /// <summary>
    /// The NLMSG_DONE that ends a failed dump, as the kernel sends it (netlink_dump_done): -errno, then the ext-ack
    /// message TLV right after it with NLM_F_ACK_TLVS; never an echoed request header.
    /// </summary>
    public static byte[] FailedDump(uint sequence, uint portId, int errno, string? extendedAck)
    {
        var flags = NetlinkMessageFlags.Multi;
        var payload = new List<byte>(64);
        payload.AddRange(BitConverter.GetBytes(-errno));
        if (extendedAck is not null)
        {
            flags |= NetlinkMessageFlags.AckTlvs;
            payload.AddRange(Attribute((ushort)ExtendedAckAttribute.Message, [.. System.Text.Encoding.UTF8.GetBytes(extendedAck), 0]));
        }
        return Message(NetlinkMessageType.Done, flags, sequence, portId, payload.ToArray());
    }

    /// <summary>One nlattr with its padding.</summary>
    public static byte[] Attribute(ushort type, ReadOnlySpan<byte> value)
    {
        var bytes = new byte[NetlinkAlign.Attribute(4 + value.Length)];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), type);
        value.CopyTo(bytes.AsSpan(4));
        return bytes;
    }

    /// <summary>Several messages packed into one datagram.</summary>
    public static byte[] Datagram(params byte[][] messages) => [.. messages.SelectMany(m => m)];
}
