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
