using IpvlanCni.Netlink;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>A transport that passes through to a real one and keeps every request and received datagram.</summary>
public sealed class RecordingTransport(INetlinkTransport inner) : INetlinkTransport
{
    public List<byte[]> Sent { get; } = [];
    public List<byte[]> Received { get; } = [];
    public uint PortId => inner.PortId;

    public void Send(ReadOnlySpan<byte> message)
    {
        Sent.Add(message.ToArray());
        inner.Send(message);
    }

    public int Receive(Span<byte> buffer, bool peek)
    {
        int n = inner.Receive(buffer, peek);
        if (!peek)
            Received.Add(buffer[..Math.Min(n, buffer.Length)].ToArray());
        return n;
    }

    public void Dispose() => inner.Dispose();
}
