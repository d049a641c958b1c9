using System.Net.Sockets;
using IpvlanCni.Kernel.Tests.Support;

namespace IpvlanCni.Kernel.Tests.Network;

/// <summary>RTM_GETNETCONF over a socket bound to a namespace reads the same switch as that namespace's /proc/sys.</summary>
public sealed class NetconfTests : KernelTest
{
    [Fact]
    public void Forwarding_read_over_netlink_follows_the_sysctls_of_the_sockets_namespace()
    {
        using var node = new TestNode();
        foreach (var (v4, v6) in new[] { ("1", "0"), ("0", "1"), ("0", "0") })
        {
            node.Namespace.WriteSysctl("net.ipv4.ip_forward", v4);
            node.Namespace.WriteSysctl("net.ipv6.conf.all.forwarding", v6);
            Assert.Equal(v4 == "1", node.Client.IsForwarding(AddressFamily.InterNetwork));
            Assert.Equal(v6 == "1", node.Client.IsForwarding(AddressFamily.InterNetworkV6));
        }
    }
}
