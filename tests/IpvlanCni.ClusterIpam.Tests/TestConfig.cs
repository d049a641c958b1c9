using System.Text;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam.Tests;

static class TestConfig
{
    /// <summary>A parsed config as the agent would parse it: <paramref name="ipamExtra"/> is JSON members added to ipam.</summary>
    public static ClusterIpamConfig Parse(string node, string ranges, string ipamExtra = "", string endpoints = "\"http://127.0.0.1:2379\"", string network = "net1")
    {
        string extra = ipamExtra.Length > 0 ? "," + ipamExtra : "";
        string json = "{\"cniVersion\":\"1.1.0\",\"name\":\"" + network + "\",\"type\":\"ipvlan\",\"ipam\":{\"type\":\"ipvlan-cni-ipam\",\"node\":\"" + node +
            "\",\"etcdEndpoints\":[" + endpoints + "],\"ranges\":" + ranges + extra + "}}";
        var bytes = Encoding.UTF8.GetBytes(json);
        using var doc = JsonDocument.Parse(bytes);
        var request = new CniRequest
        {
            Command = CniCommand.Add,
            ContainerId = ContainerId.Parse("c", "CNI_CONTAINERID"),
            IfName = InterfaceName.Parse("eth0", "CNI_IFNAME"),
            ConfigBytes = bytes,
            Config = new NetworkConfig { CniVersion = "1.1.0", Name = NetworkName.Parse(network, "name"), Type = "ipvlan" },
        };
        return ClusterIpamConfig.Parse(doc.RootElement.GetProperty("ipam").Clone(), request);
    }

    public static Attachment Att(string node, string cid, string ifName = "eth0") => new(node, cid, ifName) { BootId = "boot1", BootMilliseconds = 0 };

    public static DateTimeOffset Soon => DateTimeOffset.UtcNow.AddSeconds(10);
}
