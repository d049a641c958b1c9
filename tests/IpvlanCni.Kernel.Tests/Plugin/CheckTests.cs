using System.Net;
using System.Net.Sockets;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>CHECK passes while the kernel still has what ADD made, and fails (105) for each thing taken away.</summary>
public class CheckTests : KernelTest
{
    public enum Damage { DeleteAddress, ChangeMtu, ChangeMtuThatWasNotConfigured, DeleteDefaultRoute, DeleteLink, ChangeModeByReplacingTheLink }

    [Theory]
    [InlineData(Damage.DeleteAddress, "10.10.0.")]
    [InlineData(Damage.ChangeMtu, "MTU")]
    [InlineData(Damage.ChangeMtuThatWasNotConfigured, "MTU")]
    [InlineData(Damage.DeleteDefaultRoute, "0.0.0.0/0")]
    [InlineData(Damage.DeleteLink, "eth0")]
    [InlineData(Damage.ChangeModeByReplacingTheLink, "mode")]
    public void Check_fails_after_the_link_is_changed(Damage damage, string named)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("check", "10.10.0.0/24").With("mtu", damage == Damage.ChangeMtuThatWasNotConfigured ? null : 1400);
        var pod = node.AddPod();
        var added = cni.Add(config, pod, "c1").Succeeded();
        cni.Check(config, pod, "c1", added).Succeeded();

        var eth0 = pod.Client.GetLink("eth0");
        switch (damage)
        {
            case Damage.DeleteAddress:
                pod.Client.DeleteAddress(new AddressInfo(eth0.Index, added.Addresses.Single()));
                break;
            case Damage.ChangeMtu or Damage.ChangeMtuThatWasNotConfigured:
                pod.Client.ChangeLink(eth0.Index, new LinkChange { Mtu = 1300 });
                break;
            case Damage.DeleteDefaultRoute:
                pod.Client.DeleteRoute(pod.Route("0.0.0.0/0")!);
                break;
            case Damage.DeleteLink:
                pod.Client.DeleteLink(eth0.Index);
                break;
            case Damage.ChangeModeByReplacingTheLink:
                pod.Client.DeleteLink(eth0.Index);
                node.Client.CreateLink(new IpvlanLinkSpec("eth0", node.Master.Index, IpvlanMode.L3) { Namespace = pod.Namespace, Mtu = 1400 });
                break;
        }

        Assert.Contains(named, cni.Check(config, pod, "c1", added).FailedWith(105));
    }

    [Fact]
    public void Check_fails_when_the_reservation_is_gone()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("checkipam", "10.10.0.0/24");
        var pod = node.AddPod();
        var added = cni.Add(config, pod, "c1").Succeeded();
        File.Delete(Path.Combine(cni.DataDir, "checkipam", added.Address().ToString()));

        var check = cni.Check(config, pod, "c1", added);
        Assert.NotEqual(0, check.ExitCode);
        Assert.Contains("c1", check.ErrorMessage);
    }

    [Fact]
    public void Check_fails_when_the_attachment_record_is_gone()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("checkrec", "10.10.0.0/24");
        var pod = node.AddPod();
        var added = cni.Add(config, pod, "c1").Succeeded();
        File.Delete(Path.Combine(cni.StateDir, "attachments", "checkrec", "c1@eth0"));
        Assert.Contains("c1", cni.Check(config, pod, "c1", added).FailedWith(3));
    }
}
