using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;

namespace IpvlanCni.Netlink;

/// <summary>
/// Builds one netlink message in a pooled buffer: nlmsghdr, a fixed family header, then attributes. Nested
/// attributes are opened with <see cref="BeginNested{T}"/> and back-patch their length in <see cref="EndNested"/>.
/// The connection fills in sequence and port id. Dispose returns the buffer to the pool.
/// </summary>
public ref struct NetlinkWriter
{
    // #define NLA_F_NESTED (1 << 15)
    public const ushort NestedFlag = 0x8000;
    // #define NLA_F_NET_BYTEORDER (1 << 14)
    public const ushort NetByteOrderFlag = 0x4000;

    byte[] _buffer;
    int _length;

    public NetlinkWriter(NetlinkMessageType type, NetlinkMessageFlags flags, int capacity = 256)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, 64));
        _length = 0;
        var header = Reserve(NetlinkAlign.MessageHeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], (ushort)type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)flags);
    }

    public readonly int Length => _length;

    public readonly NetlinkMessageFlags Flags => (NetlinkMessageFlags)BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(6));

    /// <summary>The message so far, with nlmsg_len set to its current length.</summary>
    public readonly Span<byte> Message
    {
        get
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)_length);
            return _buffer.AsSpan(0, _length);
        }
    }

    public readonly byte[] ToArray() => Message.ToArray();

    /// <summary>Appends <paramref name="size"/> zeroed bytes, padded to 4, and returns the unpadded span to fill in.</summary>
    public Span<byte> Reserve(int size)
    {
        int aligned = NetlinkAlign.Attribute(size);
        if (_length + aligned > _buffer.Length)
            Grow(_length + aligned);
        var span = _buffer.AsSpan(_length, aligned);
        span.Clear();
        _length += aligned;
        return span[..size];
    }

    public void Put<T>(T type, scoped ReadOnlySpan<byte> value) where T : unmanaged, Enum =>
        value.CopyTo(PutHeader(Id(type), value.Length));

    public void PutByte<T>(T type, byte value) where T : unmanaged, Enum => PutHeader(Id(type), 1)[0] = value;

    public void PutUInt16<T>(T type, ushort value) where T : unmanaged, Enum =>
        BinaryPrimitives.WriteUInt16LittleEndian(PutHeader(Id(type), 2), value);

    public void PutUInt32<T>(T type, uint value) where T : unmanaged, Enum =>
        BinaryPrimitives.WriteUInt32LittleEndian(PutHeader(Id(type), 4), value);

    public void PutInt32<T>(T type, int value) where T : unmanaged, Enum =>
        BinaryPrimitives.WriteInt32LittleEndian(PutHeader(Id(type), 4), value);

    /// <summary>A NUL-terminated string (NLA_NUL_STRING / NLA_STRING both accept it).</summary>
    public void PutString<T>(T type, string value) where T : unmanaged, Enum
    {
        int count = Encoding.UTF8.GetByteCount(value);
        var span = PutHeader(Id(type), count + 1);
        Encoding.UTF8.GetBytes(value, span);
        span[count] = 0;
    }

    /// <summary>4 or 16 bytes in network order, as the kernel stores IPv4 and IPv6 addresses.</summary>
    public void PutAddress<T>(T type, IPAddress address) where T : unmanaged, Enum
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int count);
        Put(type, bytes[..count]);
    }

    /// <summary>Opens a nested attribute; pass the returned offset to <see cref="EndNested"/>.</summary>
    /// <param name="nestedFlag">Set NLA_F_NESTED: newer policies (NLA_POLICY_NESTED strict) want it; IFLA_LINKINFO does not need it.</param>
    public int BeginNested<T>(T type, bool nestedFlag = false) where T : unmanaged, Enum
    {
        int start = _length;
        PutHeader((ushort)(Id(type) | (nestedFlag ? NestedFlag : 0)), 0);
        return start;
    }

    /// <summary>Closes the nested attribute (or rtnexthop) started at <paramref name="start"/>: both begin with a u16 length.</summary>
    public readonly void EndNested(int start) =>
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(start), checked((ushort)(_length - start)));

    public void Dispose()
    {
        if (_buffer is { Length: > 0 })
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        _length = 0;
    }

    Span<byte> PutHeader(ushort type, int valueLength)
    {
        // struct nlattr { __u16 nla_len; __u16 nla_type; }: nla_len counts the header and the unpadded value.
        int length = NetlinkAlign.AttributeHeaderLength + valueLength;
        var span = Reserve(length);
        BinaryPrimitives.WriteUInt16LittleEndian(span, checked((ushort)length));
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
        return span[NetlinkAlign.AttributeHeaderLength..];
    }

    void Grow(int needed)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _length).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    static ushort Id<T>(T type) where T : unmanaged, Enum
    {
        if (Unsafe.SizeOf<T>() != sizeof(ushort))
            throw new ArgumentException($"{typeof(T).Name}: attribute ids are u16 enums");
        return Unsafe.As<T, ushort>(ref type);
    }
}
