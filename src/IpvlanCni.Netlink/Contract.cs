namespace IpvlanCni.Netlink;

/// <summary>Where netlink messages go: a real socket, or a scripted fake in tests.</summary>
public interface INetlinkTransport : IDisposable
{
    /// <summary>The port id the kernel assigned to this socket (nl_pid).</summary>
    uint PortId { get; }
    void Send(ReadOnlySpan<byte> message);
    /// <summary>Receives one datagram into buffer; with peek, returns its full length (MSG_PEEK|MSG_TRUNC) without consuming it.</summary>
    int Receive(Span<byte> buffer, bool peek);
}

/// <summary>The kernel refused a request: errno, the operation, and the extended-ack text when the kernel gave one.</summary>
public class NetlinkException(string operation, int errno, string? extendedAck)
    : Exception($"{operation}: {Describe(errno)}{(string.IsNullOrEmpty(extendedAck) ? "" : $" ({extendedAck})")}")
{
    public string Operation { get; } = operation;
    /// <summary>Positive errno (EEXIST = 17, ENODEV = 19, ...).</summary>
    public int Errno { get; } = errno;
    public string? ExtendedAck { get; } = extendedAck;

    public bool IsNotFound => Errno is 2 /* ENOENT */ or 3 /* ESRCH */ or 19 /* ENODEV */;
    public bool IsExists => Errno == 17; /* EEXIST */

    static string Describe(int errno) => $"errno {errno}";
}

/// <summary>Malformed netlink bytes: the only exception the decoders throw.</summary>
public sealed class NetlinkDecodeException(string message) : Exception(message);
