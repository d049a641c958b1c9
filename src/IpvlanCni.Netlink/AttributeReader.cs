using System.Buffers.Binary;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;

namespace IpvlanCni.Netlink;

/// <summary>
/// Iterates the attributes of one message or nest. Every length is checked (4 &lt;= nla_len &lt;= remaining);
/// getters insist on the exact width; anything malformed throws <see cref="NetlinkDecodeException"/>.
/// <code>var r = new AttributeReader(span); while (r.Next()) switch (r.TypeAs&lt;LinkAttribute&gt;()) { ... }</code>
/// </summary>
public ref struct AttributeReader(ReadOnlySpan<byte> attributes)
{
    ReadOnlySpan<byte> _rest = attributes;

    /// <summary>nla_type with NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off.</summary>
    public ushort Type { get; private set; }
    public bool IsNested { get; private set; }
    public bool IsNetByteOrder { get; private set; }
    public ReadOnlySpan<byte> Value { get; private set; }

    public readonly T TypeAs<T>() where T : unmanaged, Enum
    {
        ushort type = Type;
        return Unsafe.SizeOf<T>() == sizeof(ushort) ? Unsafe.As<ushort, T>(ref type) : throw new ArgumentException($"{typeof(T).Name}: attribute ids are u16 enums");
    }

    public bool Next()
    {
        if (_rest.IsEmpty)
            return false;
        int header = NetlinkAlign.AttributeHeaderLength;
        if (_rest.Length < header)
            throw new NetlinkDecodeException($"attribute header: {_rest.Length} bytes left, need {header}");
        int length = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
        ushort rawType = BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]);
        if (length < header)
            throw new NetlinkDecodeException($"attribute {rawType & 0x3FFF}: length {length} is shorter than its header");
        if (length > _rest.Length)
            throw new NetlinkDecodeException($"attribute {rawType & 0x3FFF}: length {length} runs past the end ({_rest.Length} bytes left)");
        Type = (ushort)(rawType & ~(NetlinkWriter.NestedFlag | NetlinkWriter.NetByteOrderFlag));
        IsNested = (rawType & NetlinkWriter.NestedFlag) != 0;
        IsNetByteOrder = (rawType & NetlinkWriter.NetByteOrderFlag) != 0;
        Value = _rest[header..length];
        // The last attribute's padding may be missing: step by NLA_ALIGN(len) but never past the end.
        _rest = _rest[Math.Min(NetlinkAlign.Attribute(length), _rest.Length)..];
        return true;
    }

    public readonly byte GetByte() => Exact(1)[0];
    public readonly ushort GetUInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Exact(2));
    public readonly ushort GetUInt16BigEndian() => BinaryPrimitives.ReadUInt16BigEndian(Exact(2));
    public readonly uint GetUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Exact(4));
    public readonly int GetInt32() => BinaryPrimitives.ReadInt32LittleEndian(Exact(4));
    public readonly ulong GetUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Exact(8));
    public readonly byte[] GetBytes() => Value.ToArray();

    /// <summary>The string up to the first NUL inside the value; a value with no NUL is malformed.</summary>
    public readonly string GetString()
    {
        int nul = Value.IndexOf((byte)0);
        if (nul < 0)
            throw new NetlinkDecodeException($"attribute {Type}: string without a terminating NUL");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Value[..nul]);
        }
        catch (DecoderFallbackException)
        {
            throw new NetlinkDecodeException($"attribute {Type}: string is not UTF-8");
        }
    }

    /// <summary>An IPv4 (4 bytes) or IPv6 (16 bytes) address.</summary>
    public readonly IPAddress GetAddress() =>
        Value.Length is 4 or 16 ? new IPAddress(Value) : throw new NetlinkDecodeException($"attribute {Type}: {Value.Length} bytes is not an IPv4 or IPv6 address");

    public readonly AttributeReader GetNested() => new(Value);

    readonly ReadOnlySpan<byte> Exact(int width) =>
        Value.Length == width ? Value : throw new NetlinkDecodeException($"attribute {Type}: {Value.Length} bytes, expected exactly {width}");
}
