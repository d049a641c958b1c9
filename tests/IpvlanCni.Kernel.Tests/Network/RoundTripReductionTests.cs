using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Network;

/// <summary>The kernel does what the cheaper requests ask: sysctls without entering the namespace, deletes by name.</summary>
public sealed class RoundTripReductionTests : KernelTest
{
    [Fact]
    public void ArpNotify_in_a_link_change_sets_the_sysctl_and_renames_in_the_same_message()
    {
        using var node = new TestNode();
        var pod = node.AddPod();
        pod.Client.CreateLink(new DummyLinkSpec("tmp0"));
        int index = pod.Client.GetLink("tmp0").Index;
        Assert.Equal("0", pod.Namespace.ReadSysctl("net.ipv4.conf.tmp0.arp_notify"));

        pod.Client.ChangeLink(index, new LinkChange { Name = "eth0", ArpNotify = true });

        Assert.Equal(index, pod.Client.GetLink("eth0").Index);
        Assert.Equal("1", pod.Namespace.ReadSysctl("net.ipv4.conf.eth0.arp_notify"));
    }

    [Fact]
    public void TryDeleteLink_by_name_deletes_once_then_reports_absence()
    {
        using var node = new TestNode();
        var pod = node.AddPod();
        pod.Client.CreateLink(new DummyLinkSpec("gone0"));

        Assert.True(pod.Client.TryDeleteLink("gone0"));
        Assert.Null(pod.Client.TryGetLink("gone0"));
        Assert.False(pod.Client.TryDeleteLink("gone0"));
    }

    [Fact]
    public void TryWriteSysctls_writes_each_and_returns_the_ones_it_could_not()
    {
        using var node = new TestNode();
        var failed = node.Namespace.TryWriteSysctls(("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.nosuch0.arp_notify", "1"));
        Assert.Equal(["net.ipv4.conf.nosuch0.arp_notify"], failed);
        Assert.Equal("1", node.Namespace.ReadSysctl("net.ipv4.ip_forward"));
    }
}
