using System.Net;
using System.Text;
using IpvlanCni.Network;

namespace IpvlanCni.Cni.Tests;

public class NamesTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("0abc", true)]
    [InlineData("abc_def.ghi-jkl", true)]
    [InlineData("3f2a9c1b7e6d5c4b3a29180716253443f2a9c1b7e6d5c4b3a291807162534", true)]
    [InlineData("", false)]
    [InlineData("_abc", false)]
    [InlineData(".abc", false)]
    [InlineData("-abc", false)]
    [InlineData("a b", false)]
    [InlineData("a/b", false)]
    [InlineData("a:b", false)]
    [InlineData("é", false)]
    [InlineData("a\n", false)]
    public void Identifiers(string value, bool valid) => Assert.Equal(valid, CniNames.IsValidIdentifier(value, out _));

    [Fact]
    public void IdentifiersHaveALengthLimit()
    {
        Assert.True(CniNames.IsValidIdentifier(new string('a', 255), out _));
        Assert.False(CniNames.IsValidIdentifier(new string('a', 256), out var problem));
        Assert.Contains("255", problem);
    }

    [Theory]
    [InlineData("eth0", true)]
    [InlineData("a", true)]
    [InlineData("123456789012345", true)]
    [InlineData("1234567890123456", false)]
    [InlineData("ééééééé", true)]    // 14 bytes
    [InlineData("éééééééé", false)]  // 16 bytes: the limit is bytes, not characters
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("...", true)]
    [InlineData("eth/0", false)]
    [InlineData("eth:0", false)]
    [InlineData("eth 0", false)]
    [InlineData("eth\t0", false)]
    [InlineData("eth0\n", false)]
    [InlineData("eth%d", false)] // a kernel name template: the link would be eth0, not the name we record
    [InlineData("net%", false)]
    public void InterfaceNames(string name, bool valid) => Assert.Equal(valid, CniNames.IsValidInterfaceName(name, out _));
}

public class ArgsTests
{
    [Theory]
    [InlineData("", "")]
    [InlineData("A=1", "A=1")]
    [InlineData("A=1;B=2", "A=1|B=2")]
    [InlineData("A=;B=x=y", "A=|B=x=y")]
    [InlineData("A=1;", "A=1")]
    [InlineData("IgnoreUnknown=true;K8S_POD_NAMESPACE=default", "IgnoreUnknown=true|K8S_POD_NAMESPACE=default")]
    public void Parses(string text, string expected) =>
        Assert.Equal(expected, string.Join("|", CniArgs.Parse(text).Select(p => $"{p.Key}={p.Value}")));

    [Theory]
    [InlineData("A")]
    [InlineData("A=1;B")]
    [InlineData("=1")]
    public void RejectsPairsWithoutKeyOrEquals(string text)
    {
        var e = Assert.Throws<CniException>(() => CniArgs.Parse(text));
        Assert.Equal(CniErrorCode.InvalidEnvironment, e.Code);
        Assert.Contains("CNI_ARGS", e.Message);
    }

    [Fact]
    public void LaterValuesWin() => Assert.Equal("2", CniArgs.Get(CniArgs.Parse("A=1;A=2"), "A"));
}

public class ConfigReaderTests
{
    static CniConfigReader Parse(string json) => CniConfigReader.Parse(Encoding.UTF8.GetBytes(json));

    const string Doc = """
        {"master":"eth1","mtu":1500,"linkInContainer":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16","gateway":"10.1.0.1"},{"subnet":7}]],"routes":null}}
        """;

    [Fact]
    public void ReadsTypedValuesAndAbsence()
    {
        var root = Parse(Doc);
        Assert.Equal("eth1", root.GetString("master"));
        Assert.Equal(1500, root.GetInt32("mtu", 68, 65535));
        Assert.True(root.GetBoolean("linkInContainer"));
        Assert.Null(root.GetString("mode"));
        Assert.Null(root.GetInt32("nope"));
        var ipam = root.GetObject("ipam")!.Value;
        Assert.Equal("ipam", ipam.Path);
        Assert.Empty(ipam.GetArray("routes")); // JSON null reads as not set
        var first = ipam.GetArray("ranges")[0].AsArray()[0];
        Assert.Equal("ipam.ranges[0][0]", first.Path);
        Assert.Equal(IpPrefix.Parse("10.1.0.0/16"), first.GetPrefix("subnet"));
        Assert.Equal(IPAddress.Parse("10.1.0.1"), first.GetAddress("gateway"));
    }

    [Fact]
    public void WrongTypeNamesTheFullPath()
    {
        var range = Parse(Doc).GetObject("ipam")!.Value.GetArray("ranges")[0].AsArray()[1];
        var e = Assert.Throws<CniException>(() => range.GetPrefix("subnet"));
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
        Assert.Equal("ipam.ranges[0][1].subnet must be a string, not a number", e.Message);
    }

    [Theory]
    [InlineData("""{"mtu":"1500"}""", 6, "mtu must be a number, not a string")]
    [InlineData("""{"mtu":1.5}""", 6, "mtu must be an integer")]
    [InlineData("""{"mtu":10}""", 7, "mtu is 10, outside 68..65535")]
    [InlineData("""{"mtu":1e30}""", 6, "mtu must be an integer")]
    public void IntegersAreExact(string json, int code, string message)
    {
        var e = Assert.Throws<CniException>(() => Parse(json).GetInt32("mtu", 68, 65535));
        Assert.Equal(code, e.Code);
        Assert.StartsWith(message, e.Message);
    }

    [Theory]
    [InlineData("""{"a":"10.0.0.1"}""", 6)]
    [InlineData("""{"a":"10.0.0.0/33"}""", 6)]
    [InlineData("""{"a":"10.1/16"}""", 6)]
    public void PrefixesAreStrict(string json, int code) =>
        Assert.Equal(code, Assert.Throws<CniException>(() => Parse(json).GetPrefix("a")).Code);

    [Theory]
    [InlineData("10.1")]
    [InlineData("10.0.0.1/24")]
    [InlineData("fe80::1%eth0")]
    [InlineData("host")]
    public void AddressesAreStrict(string text)
    {
        var e = Assert.Throws<CniException>(() => Parse($$"""{"gw":"{{text}}"}""").GetAddress("gw"));
        Assert.Contains("gw", e.Message);
    }

    [Fact]
    public void MissingRequiredIsInvalidConfig()
    {
        var e = Assert.Throws<CniException>(() => Parse(Doc).GetObject("ipam")!.Value.GetRequiredString("subnet"));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal("ipam.subnet is required", e.Message);
    }

    [Fact]
    public void StringArrays()
    {
        var root = Parse("""{"a":["x","y"],"b":["x",1]}""");
        Assert.Equal(["x", "y"], root.GetStringArray("a"));
        Assert.Contains("b[1]", Assert.Throws<CniException>(() => root.GetStringArray("b")).Message);
    }

    // GetString throws InvalidOperationException for these; every read must turn that into 6 naming the field.
    [Theory]
    [InlineData("""{"name":"\ud800"}""", "name")]
    [InlineData("""{"name":"a\udfffb"}""", "name")]
    [InlineData("""{"ipam":{"node":"\ud800"}}""", "ipam.node")]
    [InlineData("""{"list":["ok","\udc00"]}""", "list[1]")]
    public void LoneSurrogateEscapeIsDecodeFailureNamingTheField(string json, string field)
    {
        var root = Parse(json);
        var e = Assert.Throws<CniException>(() => field switch
        {
            "name" => root.GetString("name"),
            "ipam.node" => root.GetObject("ipam")!.Value.GetRequiredString("node"),
            _ => string.Join(",", root.GetStringArray("list")),
        });
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
        Assert.StartsWith($"{field} holds an escape of a lone UTF-16 surrogate", e.Message);
    }

    [Fact]
    public void PairedSurrogateEscapeIsText() =>
        Assert.Equal("\U0001F600", Parse("""{"name":"\ud83d\ude00"}""").GetString("name"));

    [Fact]
    public void LoneSurrogateInAResultIsDecodeFailure()
    {
        var e = Assert.Throws<CniException>(() => CniResultJson.Parse(Encoding.UTF8.GetBytes(
            """{"cniVersion":"1.0.0","ips":[{"address":"10.1.1.2/24"}],"dns":{"domain":"\ud800"}}""")));
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
        Assert.Contains("domain", e.Message);
    }

    [Fact]
    public void InvalidHelperNamesNothingByItself()
    {
        var mode = Parse("""{"mode":"l4"}""").GetRequired("mode");
        var e = mode.Invalid($"{mode.DisplayPath} is '{mode.AsString()}', expected l2, l3 or l3s");
        Assert.Equal((7, "mode is 'l4', expected l2, l3 or l3s"), (e.Code, e.Message));
    }
}

public class LogTests
{
    [Fact]
    public void OneLinePerCommand()
    {
        string path = Path.Combine(Path.GetTempPath(), $"cni-log-{Guid.NewGuid():N}.log");
        try
        {
            var log = new CniLog(path);
            Cni.Run(Cni.Env("ADD"), Cni.Config(), log: log);
            Cni.Run(Cni.Env("DEL"), """{"cniVersion":"1.1.0","name":"bad name"}""", log: log);
            var lines = File.ReadAllLines(path);
            Assert.Equal(2, lines.Length);
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ADD container=c0ffee ifname=eth0 network=net1 duration_ms=\d+ ok$", lines[0]);
            Assert.Matches(@" DEL container=c0ffee ifname=eth0 network=""bad name"" duration_ms=\d+ error code=7 msg=""name contains ' ' .*""$", lines[1]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FailingToLogDoesNotFailTheCommand()
    {
        var log = new CniLog("/nonexistent-dir/for/sure/cni.log");
        var outcome = Cni.Run(Cni.Env("ADD"), Cni.Config(), log: log);
        Assert.Equal(0, outcome.ExitCode);
        Assert.NotNull(log.LastFailure);
        Assert.StartsWith("{", outcome.Stdout); // and nothing of the log reached stdout
    }

    /// <summary>300 writers at once, each with its own descriptor as separate processes have: 300 whole lines.</summary>
    [Fact]
    public void ConcurrentWritersLoseNoLineAndSplitNone()
    {
        string path = Path.Combine(Path.GetTempPath(), $"cni-log-{Guid.NewGuid():N}.log");
        try
        {
            const int writers = 300;
            using var start = new Barrier(writers);
            var threads = Enumerable.Range(0, writers).Select(i => new Thread(() =>
            {
                var log = new CniLog(path);
                start.SignalAndWait();
                log.Write(new CniLogEntry(DateTimeOffset.UtcNow, "ADD", $"c{i}", "eth0", new string('n', 200), TimeSpan.Zero, null));
                Assert.Null(log.LastFailure);
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            var lines = File.ReadAllLines(path);
            Assert.Equal(writers, lines.Length);
            Assert.All(lines, line => Assert.Matches(@"^\S+ ADD container=c\d+ ifname=eth0 network=n{200} duration_ms=0 ok$", line));
            Assert.Equal(writers, lines.Select(l => l.Split(' ')[2]).Distinct().Count());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_symlink_or_a_fifo_at_the_log_path_is_refused_without_blocking()
    {
        string dir = Directory.CreateTempSubdirectory("cni-log-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "target"), "");
            File.CreateSymbolicLink(Path.Combine(dir, "link"), Path.Combine(dir, "target"));
            var linked = new CniLog(Path.Combine(dir, "link"));
            linked.Write(new CniLogEntry(DateTimeOffset.UtcNow, "ADD", "c", "eth0", "n", TimeSpan.Zero, null));
            Assert.Contains("symbolic link", linked.LastFailure);
            Assert.Equal("", File.ReadAllText(Path.Combine(dir, "target")));
            Assert.Equal("is a symbolic link", CniLog.Problem(Path.Combine(dir, "link")));
            Assert.Equal("is not a regular file", CniLog.Problem(dir));
            Assert.Null(CniLog.Problem(Path.Combine(dir, "absent")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void HostileValuesStayOnOneLine()
    {
        var line = CniLog.Format(new CniLogEntry(DateTimeOffset.UnixEpoch, "ADD", "a\nb", "eth0", "n", TimeSpan.FromMilliseconds(3),
            new CniException(7, "bad \"x\"\nnext")));
        Assert.Equal("1970-01-01T00:00:00.000Z ADD container=\"a b\" ifname=eth0 network=n duration_ms=3 error code=7 msg=\"bad \\\"x\\\" next\"\n", line);
    }
}

public class VersionsTests
{
    [Fact]
    public void Ordering()
    {
        Assert.True(CniVersions.AtLeast("1.1.0", "0.4.0"));
        Assert.False(CniVersions.AtLeast("0.3.1", "0.4.0"));
        Assert.True(CniVersions.IsPre100("0.4.0"));
        Assert.False(CniVersions.IsPre100("1.0.0"));
        Assert.False(CniVersions.IsSupported("0.2.0"));
        Assert.False(CniVersions.IsSupported(null));
    }
}

/// <summary>Keys are matched the way Go's encoding/json fills the reference plugins' structs.</summary>
public class KeyMatchingTests
{
    static CniConfigReader Root(string json) => CniConfigReader.Parse(Encoding.UTF8.GetBytes(json));

    [Theory]
    [InlineData("""{"master":"ens10"}""", "ens10")]
    [InlineData("""{"Master":"ens10"}""", "ens10")]
    [InlineData("""{"MASTER":"ens10"}""", "ens10")]
    [InlineData("""{"master":"a","Master":"b"}""", "b")]  // a later key overwrites
    [InlineData("""{"Master":"b","master":"a"}""", "a")]
    [InlineData("""{"master":"a","MASTER":null}""", "a")] // null changes nothing
    [InlineData("""{"mastr":"a"}""", null)]
    public void Keys_match_ignoring_case_and_the_last_non_null_wins(string json, string? expected) =>
        Assert.Equal(expected, Root(json).GetString("master"));

    [Theory]
    [InlineData("010.1.1.1")]
    [InlineData("10.1.1")]
    public void Addresses_are_read_by_gos_rules(string text)
    {
        var e = Assert.Throws<CniException>(() => Root($$"""{"a":"{{text}}"}""").GetAddress("a"));
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
        Assert.Contains(text, e.Message);
    }
}
