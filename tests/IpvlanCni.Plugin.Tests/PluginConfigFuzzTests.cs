using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;

namespace IpvlanCni.Plugin.Tests;

/// <summary>
/// Random configurations and environments through the dispatcher and the plugin's parsers (PluginConfig.Parse, then
/// IpamFactory.Create as ADD does): every request is either accepted or refused with the spec's error JSON and a typed
/// CniException's code, never 999 (an exception that was not ours).
/// </summary>
public sealed class PluginConfigFuzzTests
{
    /// <summary>The plugin's parsing, without the kernel: what ADD, DEL and CHECK do before they touch anything.</summary>
    sealed class ParsingPlugin : ICniPlugin
    {
        static void Parse(CniRequest request)
        {
            var config = PluginConfig.Parse(request);
            if (config.Ipam is { } ipam && config.IpamType is "host-local" or "static")
                IpamFactory.Create(ipam, request);
        }

        public CniResult Add(CniRequest request)
        {
            Parse(request);
            return new CniResult { CniVersion = request.Config.CniVersion };
        }

        public void Delete(CniRequest request) => Parse(request);
        public void Check(CniRequest request) => Parse(request);
        public void Status(CniRequest request) => Parse(request);
        public void GarbageCollect(CniRequest request) => Parse(request);
    }

    static readonly Gen<JsonNode?> Scalar = Gen.OneOf(
        Gen.Const((JsonNode?)null),
        Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b)),
        Gen.Int.Select(i => (JsonNode?)JsonValue.Create(i)),
        Gen.Double.Select(d => double.IsFinite(d) ? (JsonNode?)JsonValue.Create(d) : JsonValue.Create(0.5)),
        Gen.String.Select(s => (JsonNode?)JsonValue.Create(s)));

    /// <summary>Any JSON value, a few levels deep.</summary>
    static readonly Gen<JsonNode?> AnyJson = Gen.Recursive<JsonNode?>((depth, self) => depth >= 3
        ? Scalar
        : Gen.Frequency(
            (4, Scalar),
            (1, self.Array[0, 3].Select(items => (JsonNode?)new JsonArray(items.Select(i => i?.DeepClone()).ToArray()))),
            (1, Gen.Select(Gen.String[1, 6], self).Array[0, 3].Select(Object))));

    static JsonNode? Object((string Key, JsonNode? Value)[] members)
    {
        var obj = new JsonObject();
        foreach (var (key, value) in members)
            obj[key] = value?.DeepClone();
        return obj;
    }

    static Gen<JsonNode?> Text(params string[] plausible) =>
        Gen.Frequency((3, Gen.OneOfConst(plausible).Select(s => (JsonNode?)JsonValue.Create(s))), (1, AnyJson));

    static readonly Gen<JsonNode?> Address = Text("10.1.1.1", "10.1.1.0", "10.1.1.255", "fd00::1", "::", "1.2.3", "10.1.1.1/24", "300.1.1.1", "", "fd00::1%eth0");
    static readonly Gen<JsonNode?> Cidr = Text("10.1.1.0/24", "10.1.1.5/24", "10.1.1.0/31", "10.1.1.0/32", "10.1.1.0/33", "0.0.0.0/0", "fd00::/64", "fd00::/127", "fd00::/129", "10.1.1.0", "banana");

    /// <summary>An object holding each key with probability 2/3, its value from the key's generator.</summary>
    static Gen<JsonNode?> ObjectOf(params (string Key, Gen<JsonNode?> Value)[] keys)
    {
        var members = Gen.Const(() => new List<(string, JsonNode?)>());
        foreach (var (key, value) in keys)
        {
            var member = Gen.Frequency((2, value.Select(v => (Present: true, Value: v))), (1, Gen.Const((Present: false, Value: (JsonNode?)null))));
            members =
                from list in members
                from m in member
                select m.Present ? [.. list, (key, m.Value)] : list;
        }
        return members.Select(list => Object([.. list]));
    }

    static readonly Gen<JsonNode?> Range = ObjectOf(("subnet", Cidr), ("rangeStart", Address), ("rangeEnd", Address), ("gateway", Address));

    static readonly Gen<JsonNode?> RangeSets = Gen.Frequency(
        (3, Range.Array[0, 3].Select(r => (JsonNode?)new JsonArray(r)).Array[0, 3].Select(s => (JsonNode?)new JsonArray(s))),
        (1, AnyJson));

    static readonly Gen<JsonNode?> Route = ObjectOf(("dst", Cidr), ("gw", Address), ("mtu", AnyJson), ("priority", AnyJson), ("table", AnyJson));

    static readonly Gen<JsonNode?> Ipam = Gen.Frequency(
        (4, ObjectOf(("type", Text("host-local", "static", "")), ("subnet", Cidr), ("rangeStart", Address), ("rangeEnd", Address),
            ("gateway", Address), ("ranges", RangeSets), ("routes", Route.Array[0, 2].Select(r => (JsonNode?)new JsonArray(r))),
            ("dataDir", Text("/tmp/fuzz-never-created", "relative", "")), ("addresses", ObjectOf(("address", Cidr), ("gateway", Address)).Array[0, 2].Select(a => (JsonNode?)new JsonArray(a))))),
        (1, AnyJson));

    /// <summary>Network configurations: the plugin's keys with plausible or hostile values, or anything at all.</summary>
    static readonly Gen<JsonNode?> Config = ObjectOf(
        ("cniVersion", Text("1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.2.0", "0.1.0", "9.9.9", "")),
        ("name", Text("net1", "a.b-c_d", "../x", "a/b", "..", "")),
        ("type", Text("ipvlan-cni")),
        ("master", Text("ens10", "ens10.100", "ens10.0", "ens10.4095", "../x", "a b", "0123456789abcdef", "")),
        ("mode", Text("l2", "l3", "l3s", "L2", "")),
        ("flag", Text("bridge", "private", "vepa", "")),
        ("mtu", AnyJson),
        ("linkInContainer", AnyJson),
        ("ipam", Ipam),
        ("dns", ObjectOf(("nameservers", AnyJson), ("domain", AnyJson), ("search", AnyJson), ("options", AnyJson))),
        ("hostAccess", ObjectOf(("addresses", Address.Array[0, 2].Select(a => (JsonNode?)new JsonArray(a))), ("interface", Text("ipvlh2", "a/b", "")))),
        ("egress", Text("underlay", "host", "")),
        ("ipMasq", AnyJson),
        ("stateDir", Text("/var/lib/cni/x", "relative", "")),
        ("logFile", Text("/tmp/fuzz-never-created.log", "relative", "")),
        ("runtimeConfig", ObjectOf(("ips", Address.Array[0, 2].Select(a => (JsonNode?)new JsonArray(a))), ("ipRanges", RangeSets))),
        ("args", ObjectOf(("cni", ObjectOf(("ips", Address.Array[0, 2].Select(a => (JsonNode?)new JsonArray(a))))))),
        ("prevResult", ObjectOf(("cniVersion", Text("1.1.0", "0.2.0")), ("ips", ObjectOf(("address", Cidr), ("gateway", Address)).Array[0, 2].Select(a => (JsonNode?)new JsonArray(a))),
            ("interfaces", AnyJson), ("routes", Route.Array[0, 2].Select(r => (JsonNode?)new JsonArray(r))), ("ip4", AnyJson))),
        (CniDispatcher.ValidAttachmentsKey, Gen.Frequency(
            (2, ObjectOf(("containerID", Text("c1", "")), ("ifname", Text("eth0", ""))).Array[0, 2].Select(a => (JsonNode?)new JsonArray(a))),
            (1, AnyJson))));

    static readonly Gen<string> Command = Gen.OneOfConst("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION", "add", "");

    static readonly Gen<Dictionary<string, string>> HostileEnvironment =
        from command in Command
        from id in Gen.OneOf(Gen.OneOfConst("c1", "a@b", "../x", ""), Gen.String[0, 20])
        from ifName in Gen.OneOf(Gen.OneOfConst("eth0", "..", "0123456789abcdef", ""), Gen.String[0, 17])
        from netns in Gen.OneOf(Gen.OneOfConst("/var/run/netns/x", "", "relative"), Gen.String[0, 20])
        from args in Gen.OneOf(Gen.OneOfConst("", "IP=10.1.1.7", "IP=banana", "IP=10.1.1.7,fd00::7", "IgnoreUnknown=1;K=V", "K"), Gen.String[0, 20])
        select new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = id,
            ["CNI_IFNAME"] = ifName,
            ["CNI_NETNS"] = netns,
            ["CNI_ARGS"] = args,
            ["CNI_PATH"] = "/nonexistent",
        };

    /// <summary>Mostly a valid environment, so that most requests reach the configuration; sometimes a hostile one.</summary>
    static readonly Gen<Dictionary<string, string>> Environment = Gen.Frequency(
        (3, from command in Gen.OneOfConst("ADD", "DEL", "CHECK", "STATUS", "GC")
            from args in Gen.OneOfConst("", "IP=10.1.1.7", "IP=banana", "IP=10.1.1.7,fd00::7", "IgnoreUnknown=1")
            select new Dictionary<string, string>
            {
                ["CNI_COMMAND"] = command,
                ["CNI_CONTAINERID"] = "c1",
                ["CNI_IFNAME"] = "eth0",
                ["CNI_NETNS"] = "/var/run/netns/x",
                ["CNI_ARGS"] = args,
                ["CNI_PATH"] = "/nonexistent",
            }),
        (1, HostileEnvironment));

    /// <summary>Returns whether the request was accepted.</summary>
    static bool AssertOnlyTypedErrors(Dictionary<string, string> env, byte[] stdin)
    {
        using var output = new MemoryStream();
        int exit = CniDispatcher.Run(new ParsingPlugin(), env, new MemoryStream(stdin), output);
        string text = Encoding.UTF8.GetString(output.ToArray());
        if (exit == 0)
            return true;
        var error = JsonDocument.Parse(text).RootElement;
        int code = error.GetProperty("code").GetInt32();
        Assert.True(code != CniErrorCode.Internal, $"an untyped exception escaped:\n{text}\nstdin: {Encoding.UTF8.GetString(stdin)}\nenv: {string.Join(" ", env)}");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("msg").GetString()), text);
        return false;
    }

    [Fact]
    public void Random_configurations_are_accepted_or_refused_with_a_typed_error()
    {
        int accepted = 0;
        Gen.Select(Environment, Config).Sample((env, config) =>
        {
            if (AssertOnlyTypedErrors(env, Encoding.UTF8.GetBytes(config?.ToJsonString() ?? "null")))
                Interlocked.Increment(ref accepted);
        }, iter: 10_000);
        // The generator must reach the end of parsing often enough to test it.
        Assert.True(accepted > 20, $"only {accepted} of 10000 configurations parsed");
    }

    static readonly string Valid = new JsonObject
    {
        ["cniVersion"] = "1.1.0",
        ["name"] = "net1",
        ["type"] = "ipvlan-cni",
        ["master"] = "ens10",
        ["hostAccess"] = new JsonObject { ["addresses"] = new JsonArray("10.1.1.1") },
        ["ipam"] = new JsonObject
        {
            ["type"] = "host-local",
            ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = "10.1.1.0/24", ["rangeStart"] = "10.1.1.10" })),
            ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
        },
    }.ToJsonString();

    /// <summary>A valid configuration with bytes overwritten, cut, or duplicated: broken JSON and odd values alike.</summary>
    [Fact]
    public void Mutated_bytes_of_a_valid_configuration_only_give_typed_errors()
    {
        var bytes = Encoding.UTF8.GetBytes(Valid);
        var mutated =
            from kind in Gen.Int[0, 2]
            from at in Gen.Int[0, bytes.Length - 1]
            from values in Gen.Byte.Array[1, 4]
            select kind switch
            {
                0 => [.. bytes[..at], .. values, .. bytes[Math.Min(bytes.Length, at + values.Length)..]],
                1 => bytes[..at],
                _ => [.. bytes[..at], .. bytes[at..], .. bytes[at..]],
            };
        Gen.Select(Environment, mutated).Sample((env, stdin) => { AssertOnlyTypedErrors(env, stdin); }, iter: 5_000);
    }
}
