using System.Net;
using System.Text.Json;
using IpvlanCni.Network;

namespace IpvlanCni.Cni;

/// <summary>
/// A JSON value plus the path that led to it ("ipam.ranges[0][1].subnet"), with getters that throw a
/// <see cref="CniException"/> naming that path. Wrong JSON types and unparseable values are decode failures (6);
/// a missing required key or a value outside the caller's limits is an invalid configuration (7).
/// Absent keys and JSON null both read as "not set".
/// </summary>
public readonly struct CniConfigReader
{
    public CniConfigReader(JsonElement element, string path = "")
    {
        Element = element;
        Path = path;
    }

    public JsonElement Element { get; }
    /// <summary>Where this value sits in the document; "" for the root.</summary>
    public string Path { get; }
    public JsonValueKind Kind => Element.ValueKind;

    /// <summary>Parses a whole configuration; broken JSON is a decode failure naming the line and column.</summary>
    public static CniConfigReader Parse(ReadOnlyMemory<byte> json, string what = "network configuration")
    {
        // JsonDocument accepts invalid UTF-8 inside strings and fails only when one is read, outside this try.
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
            throw new CniException(CniErrorCode.DecodeFailure, $"{what} is not valid UTF-8");
        try
        {
            // Clone so the reader outlives the pooled document.
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
            var root = document.RootElement.Clone();
            if (root.ValueKind != JsonValueKind.Object)
                throw new CniException(CniErrorCode.DecodeFailure, $"{what} must be a JSON object, not {Describe(root.ValueKind)}");
            return new CniConfigReader(root);
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line && e.BytePositionInLine is long column
                ? $" at line {line + 1}, byte {column + 1}" : "";
            throw new CniException(CniErrorCode.DecodeFailure, $"{what} is not valid JSON{where}", e.Message, e);
        }
    }

    public bool Has(string name) => TryGetValue(name, out _);

    /// <summary>The child at <paramref name="name"/>, when set (present and not null), keys matched as Go does.</summary>
    public bool TryGetValue(string name, out CniConfigReader value)
    {
        RequireKind(JsonValueKind.Object);
        if (TryGetMember(Element, name, out var child))
        {
            value = new CniConfigReader(child, Child(name));
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>
    /// A member the way Go's encoding/json fills a struct field from it (the reference plugins' reader): a key that
    /// equals the name ignoring case sets it, a later one overwrites an earlier one, and null changes nothing. So
    /// "Master" is master, and of {"mode":"l2","MODE":"l3"} the l3 counts.
    /// </summary>
    public static bool TryGetMember(JsonElement obj, string name, out JsonElement value)
    {
        value = default;
        bool found = false;
        foreach (var member in obj.EnumerateObject())
            if (member.Value.ValueKind != JsonValueKind.Null && string.Equals(member.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                value = member.Value;
                found = true;
            }
        return found;
    }

    public CniConfigReader GetRequired(string name) =>
        TryGetValue(name, out var value) ? value : throw Missing(name);

    public string? GetString(string name) => TryGetValue(name, out var v) ? v.AsString() : null;
    public string GetRequiredString(string name) => GetRequired(name).AsString();

    public bool? GetBoolean(string name) => TryGetValue(name, out var v) ? v.AsBoolean() : null;

    public int? GetInt32(string name, int min = int.MinValue, int max = int.MaxValue) =>
        TryGetValue(name, out var v) ? v.AsInt32(min, max) : null;

    public long? GetInt64(string name, long min = long.MinValue, long max = long.MaxValue) =>
        TryGetValue(name, out var v) ? v.AsInt64(min, max) : null;

    /// <summary>An object child, or null when not set.</summary>
    public CniConfigReader? GetObject(string name) => TryGetValue(name, out var v) ? v.RequireKind(JsonValueKind.Object) : null;

    /// <summary>The items of an array child; empty when not set.</summary>
    public IReadOnlyList<CniConfigReader> GetArray(string name) => TryGetValue(name, out var v) ? v.AsArray() : [];

    /// <summary>An array of strings; empty when not set.</summary>
    public IReadOnlyList<string> GetStringArray(string name) => [.. GetArray(name).Select(item => item.AsString())];

    /// <summary>An address with a prefix length ("10.1.1.0/24").</summary>
    public IpPrefix? GetPrefix(string name) => TryGetValue(name, out var v) ? v.AsPrefix() : null;

    /// <summary>A bare address ("10.1.1.1" or "fd00::1").</summary>
    public IPAddress? GetAddress(string name) => TryGetValue(name, out var v) ? v.AsAddress() : null;

    public string AsString() => ReadString(RequireKind(JsonValueKind.String).Element, DisplayPath);

    /// <summary>
    /// The one way input strings are read: a JSON string whose escapes name a lone UTF-16 surrogate ("\ud800")
    /// has no text, and JsonElement.GetString throws for it; that is a decode failure (6) naming the field.
    /// </summary>
    public static string ReadString(JsonElement stringElement, string displayPath)
    {
        try
        {
            return stringElement.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new CniException(CniErrorCode.DecodeFailure,
                $"{displayPath} holds an escape of a lone UTF-16 surrogate (like \\ud800), which is not text", e.Message, e);
        }
    }

    public bool AsBoolean() => Kind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw WrongType("a boolean"),
    };

    public int AsInt32(int min = int.MinValue, int max = int.MaxValue) => (int)AsInt64(min, max);

    public long AsInt64(long min = long.MinValue, long max = long.MaxValue)
    {
        RequireKind(JsonValueKind.Number);
        if (!Element.TryGetInt64(out long value))
            throw new CniException(CniErrorCode.DecodeFailure, $"{DisplayPath} must be an integer, not {Element.GetRawText()}");
        if (value < min || value > max)
            throw Invalid($"{DisplayPath} is {value}, outside {min}..{max}");
        return value;
    }

    public IReadOnlyList<CniConfigReader> AsArray()
    {
        RequireKind(JsonValueKind.Array);
        var items = new List<CniConfigReader>(Element.GetArrayLength());
        int i = 0;
        foreach (var item in Element.EnumerateArray())
            items.Add(new CniConfigReader(item, $"{Path}[{i++}]"));
        return items;
    }

    public IpPrefix AsPrefix()
    {
        string text = AsString();
        return IpText.TryParsePrefix(text, out var prefix) ? prefix
            : throw new CniException(CniErrorCode.DecodeFailure, $"{DisplayPath} is '{text}', not an address with a prefix length (like 10.1.1.0/24)");
    }

    /// <summary>Go's rules, as the reference reads it: "010.1.1.1" is refused, never read as 8.1.1.1.</summary>
    public IPAddress AsAddress()
    {
        string text = AsString();
        return IpText.TryParseAddress(text, out var address) ? address
            : throw new CniException(CniErrorCode.DecodeFailure, $"{DisplayPath} is '{text}', not an IP address");
    }

    /// <summary>An invalid-configuration error (7) about this value; the message should name <see cref="DisplayPath"/>.</summary>
    public CniException Invalid(string message, string? details = null) =>
        new(CniErrorCode.InvalidNetworkConfig, message, details);

    /// <summary>The path for messages: the root reads as "configuration".</summary>
    public string DisplayPath => Path.Length == 0 ? "configuration" : Path;

    public string Child(string name) => Path.Length == 0 ? name : $"{Path}.{name}";

    public override string ToString() => $"{DisplayPath}: {Element.GetRawText()}";

    CniException Missing(string name) =>
        new(CniErrorCode.InvalidNetworkConfig, $"{Child(name)} is required");

    CniException WrongType(string expected) =>
        new(CniErrorCode.DecodeFailure, $"{DisplayPath} must be {expected}, not {Describe(Kind)}");

    CniConfigReader RequireKind(JsonValueKind kind) =>
        Kind == kind ? this : throw WrongType(Describe(kind));

    static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
