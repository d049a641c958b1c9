using System.Buffers.Binary;

namespace IpvlanCni.Netlink;

/// <summary>Iterates the messages packed in one datagram, checking 16 &lt;= nlmsg_len &lt;= remaining.</summary>
public ref struct MessageReader(ReadOnlySpan<byte> datagram)
{
    ReadOnlySpan<byte> _rest = datagram;

    public NetlinkMessageType Type { get; private set; }
    public NetlinkMessageFlags Flags { get; private set; }
    public uint Sequence { get; private set; }
    public uint PortId { get; private set; }
    /// <summary>Everything after nlmsghdr, up to nlmsg_len.</summary>
    public ReadOnlySpan<byte> Payload { get; private set; }

    public bool Next()
    {
        if (_rest.IsEmpty)
            return false;
        int header = NetlinkAlign.MessageHeaderLength;
        if (_rest.Length < header)
            throw new NetlinkDecodeException($"message header: {_rest.Length} bytes left, need {header}");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_rest);
        if (length < header || length > _rest.Length)
            throw new NetlinkDecodeException($"message length {length} is outside {header}..{_rest.Length}");
        Type = (NetlinkMessageType)BinaryPrimitives.ReadUInt16LittleEndian(_rest[4..]);
        Flags = (NetlinkMessageFlags)BinaryPrimitives.ReadUInt16LittleEndian(_rest[6..]);
        Sequence = BinaryPrimitives.ReadUInt32LittleEndian(_rest[8..]);
        PortId = BinaryPrimitives.ReadUInt32LittleEndian(_rest[12..]);
        Payload = _rest[header..(int)length];
        _rest = _rest[Math.Min(NetlinkAlign.Message((int)length), _rest.Length)..];
        return true;
    }

    public readonly NetlinkMessage ToMessage() => new(Type, Flags, Sequence, PortId, Payload.ToArray());
}
