using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin.Tests;

/// <summary>PluginConfig.Parse on requests built the way the dispatcher builds them: every key, every bad value.</summary>
public class PluginConfigTests
{
    static JsonObject Network(string extra = "{}")
    {
        var config = new JsonObject
        {
            ["cniVersion"] = "1.1.0",
            ["name"] = "net1",
            ["type"] = "ipvlan-cni",
            ["master"] = "ens10",
            ["ipam"] = new JsonObject { ["type"] = "host-local", ["subnet"] = "10.1.0.0/24" },
        };
        foreach (var (key, value) in JsonNode.Parse(extra)!.AsObject())
            config[key] = value?.DeepClone();
        return config;
    }

    static PluginConfig Parse(JsonObject config)
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD",
            ["CNI_CONTAINERID"] = "c1",
            ["CNI_NETNS"] = "/run/netns/p1",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = "/opt/cni/bin",
        };
        var request = CniDispatcher.ParseRequest(CniCommand.Add, env, new MemoryStream(Encoding.UTF8.GetBytes(config.ToJsonString())));
        return PluginConfig.Parse(request);
    }

    static PluginConfig Parse(string extra) => Parse(Network(extra));

    [Fact]
    public void Defaults_are_the_reference_plugins()
    {
        var config = Parse(Network().With("master", null).With("ipam", null));
        Assert.Null(config.Master);
        Assert.Equal(IpvlanMode.L2, config.Mode);
        Assert.Equal(IpvlanFlag.Bridge, config.Flag);
        Assert.Equal(0, config.Mtu);
        Assert.False(config.LinkInContainer);
        Assert.Null(config.Ipam);
        Assert.Null(config.IpamType);
        Assert.True(config.Dns.IsEmpty);
        Assert.Null(config.HostAccess);
        Assert.Equal(EgressMode.Underlay, config.Egress);
        Assert.False(config.IpMasq);
        Assert.False(config.UsesHostSide);
        Assert.Equal("/var/lib/cni/ipvlan-cni", config.StateDir);
        Assert.Null(config.LogFile);
        Assert.Equal("net1", config.Network.Name);
    }

    [Fact]
    public void Every_key_is_read()
    {
        var config = Parse("""
            {"master":"ens10.100","mode":"l3s","flag":"vepa","mtu":1400,"linkInContainer":true,"ipMasq":true,
             "dns":{"nameservers":["10.1.0.53"],"domain":"example","search":["a.example"],"options":["ndots:2"]},
             "stateDir":"/run/ipvlan-state","logFile":"/var/log/ipvlan-cni.log"}
            """);
        Assert.Equal("ens10.100", config.Master?.Value);
        Assert.Equal(IpvlanMode.L3S, config.Mode);
        Assert.Equal(IpvlanFlag.Vepa, config.Flag);
        Assert.Equal(1400, config.Mtu);
        Assert.True(config.LinkInContainer);
        Assert.True(config.IpMasq);
        Assert.Equal("host-local", config.IpamType);
        Assert.Equal("10.1.0.0/24", config.Ipam!.Value.GetProperty("subnet").GetString());
        Assert.Equal(["10.1.0.53"], config.Dns.Nameservers);
        Assert.Equal("example", config.Dns.Domain);
        Assert.Equal(["a.example"], config.Dns.Search);
        Assert.Equal(["ndots:2"], config.Dns.Options);
        Assert.Equal("/run/ipvlan-state", config.StateDir);
        Assert.Equal("/var/log/ipvlan-cni.log", config.LogFile);
    }

    [Theory]
    [InlineData("l2", IpvlanMode.L2)]
    [InlineData("l3", IpvlanMode.L3)]
    [InlineData("l3s", IpvlanMode.L3S)]
    [InlineData("", IpvlanMode.L2)]
    public void Modes(string mode, IpvlanMode expected) => Assert.Equal(expected, Parse(Network().With("mode", mode)).Mode);

    [Theory]
    [InlineData("bridge", IpvlanFlag.Bridge)]
    [InlineData("private", IpvlanFlag.Private)]
    [InlineData("vepa", IpvlanFlag.Vepa)]
    [InlineData("", IpvlanFlag.Bridge)]
    public void Flags(string flag, IpvlanFlag expected) => Assert.Equal(expected, Parse(Network().With("flag", flag)).Flag);

    [Fact]
    public void Host_access_and_egress()
    {
        var explicitAccess = Parse("""{"hostAccess":{"addresses":["10.0.0.5","fd00::5"],"interface":"hostside0"},"egress":"host"}""");
        Assert.Equal([IPAddress.Parse("10.0.0.5"), IPAddress.Parse("fd00::5")], explicitAccess.HostAccess!.Addresses);
        Assert.Equal("hostside0", explicitAccess.HostAccess.Interface?.Value);
        Assert.Equal(EgressMode.Host, explicitAccess.Egress);
        Assert.True(explicitAccess.UsesHostSide);

        var defaults = Parse("""{"hostAccess":{}}""");
        Assert.Empty(defaults.HostAccess!.Addresses);
        Assert.Null(defaults.HostAccess.Interface);
        Assert.Equal(EgressMode.Underlay, defaults.Egress);
        Assert.True(defaults.UsesHostSide);

        Assert.True(Parse("""{"egress":"host"}""").UsesHostSide);
        Assert.False(Parse("""{"egress":"underlay"}""").UsesHostSide);
    }

    [Theory]
    [InlineData("""{"linkInContainer":true,"flag":"private"}""")] // no host side: any flag
    [InlineData("""{"linkInContainer":true,"egress":"underlay"}""")]
    [InlineData("""{"hostAccess":{},"flag":"bridge","ipMasq":true}""")]
    [InlineData("""{"egress":"host","hostAccess":{"addresses":["10.0.0.5"]}}""")]
    [InlineData("""{"mtu":65535}""")]
    [InlineData("""{"mtu":0}""")]
    [InlineData("""{"master":"abcdefghijklmno"}""")] // 15 bytes, the kernel's limit
    [InlineData("""{"mode":null,"flag":null,"mtu":null,"dns":null,"hostAccess":null}""")] // null reads as not set
    public void Accepted_combinations(string extra) => Parse(extra);

    /// <summary>Wrong JSON types and unparseable values are 6, values outside what the plugin allows 7; the message names the field.</summary>
    [Theory]
    [InlineData("""{"mode":"l4"}""", 7, "mode")]
    [InlineData("""{"mode":"L2"}""", 7, "mode")]
    [InlineData("""{"mode":2}""", 6, "mode")]
    [InlineData("""{"flag":"bridged"}""", 7, "flag")]
    [InlineData("""{"flag":true}""", 6, "flag")]
    [InlineData("""{"mtu":-1}""", 7, "mtu")]
    [InlineData("""{"mtu":65536}""", 7, "mtu")]
    [InlineData("""{"mtu":"1500"}""", 6, "mtu")]
    [InlineData("""{"mtu":1500.5}""", 6, "mtu")]
    [InlineData("""{"master":"abcdefghijklmnop"}""", 7, "master")]
    [InlineData("""{"master":"a/b"}""", 7, "master")]
    [InlineData("""{"master":"a b"}""", 7, "master")]
    [InlineData("""{"master":".."}""", 7, "master")]
    [InlineData("""{"master":10}""", 6, "master")]
    [InlineData("""{"linkInContainer":"yes"}""", 6, "linkInContainer")]
    [InlineData("""{"ipam":"host-local"}""", 6, "ipam")]
    [InlineData("""{"dns":["10.0.0.53"]}""", 6, "dns")]
    [InlineData("""{"dns":{"nameservers":"10.0.0.53"}}""", 6, "dns.nameservers")]
    [InlineData("""{"dns":{"domain":5}}""", 6, "dns.domain")]
    [InlineData("""{"hostAccess":true}""", 6, "hostAccess")]
    [InlineData("""{"hostAccess":{"addresses":"10.0.0.5"}}""", 6, "hostAccess.addresses")]
    [InlineData("""{"hostAccess":{"addresses":["10.0.0"]}}""", 6, "hostAccess.addresses[0]")]
    [InlineData("""{"hostAccess":{"addresses":["10.0.0.5/32"]}}""", 6, "hostAccess.addresses[0]")]
    [InlineData("""{"hostAccess":{"interface":"x/y"}}""", 7, "hostAccess.interface")]
    [InlineData("""{"egress":"router"}""", 7, "egress")]
    [InlineData("""{"ipMasq":"true"}""", 6, "ipMasq")]
    [InlineData("""{"stateDir":"relative/state"}""", 7, "stateDir")]
    [InlineData("""{"stateDir":3}""", 6, "stateDir")]
    [InlineData("""{"logFile":"plugin.log"}""", 7, "logFile")]
    // Host-side features need the master in the node's namespace and a master that hands frames to the host-side slave.
    [InlineData("""{"linkInContainer":true,"hostAccess":{}}""", 2, "linkInContainer: true")]
    [InlineData("""{"linkInContainer":true,"egress":"host"}""", 2, "linkInContainer: true")]
    [InlineData("""{"hostAccess":{},"flag":"private"}""", 2, "flag: \"private\"")]
    [InlineData("""{"hostAccess":{},"flag":"vepa"}""", 2, "flag: \"vepa\"")]
    [InlineData("""{"egress":"host","flag":"private"}""", 2, "flag: \"private\"")]
    public void Bad_values_fail_naming_the_field(string extra, int code, string field)
    {
        var e = Assert.Throws<CniException>(() => Parse(extra));
        Assert.Equal(code, e.Code);
        Assert.StartsWith(field, e.Message);
    }

    [Fact]
    public void Egress_host_needs_an_ipam_section()
    {
        var e = Assert.Throws<CniException>(() => Parse(Network("""{"egress":"host"}""").With("ipam", null)));
        Assert.Equal(7, e.Code);
        Assert.StartsWith("egress", e.Message);
    }

    [Theory]
    [InlineData("""{"logFile":"/var/log/x.log"}""", "/var/log/x.log")]
    [InlineData("""{"logFile":"x.log"}""", null)]
    [InlineData("""{"logFile":7}""", null)]
    [InlineData("""{"name":"no logFile"}""", null)]
    [InlineData("""{"LogFile":"/var/log/y.log"}""", "/var/log/y.log")]
    public void The_log_file_is_read_even_from_a_request_that_will_fail(string stdin, string? expected) =>
        Assert.Equal(expected, PluginConfig.TryReadLogFile(CniConfigReader.Parse(Encoding.UTF8.GetBytes(stdin))));
}

static class JsonObjectEdits
{
    public static JsonObject With(this JsonObject config, string key, JsonNode? value)
    {
        if (value is null)
            config.Remove(key);
        else
            config[key] = value;
        return config;
    }
}
