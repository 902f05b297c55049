using Billing.Silo.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Billing.Silo.Tests;

/// <summary>
/// The silo's own settings live in section <c>Silo</c>, Orleans' in <c>Orleans</c>; the dashboard port moved from
/// Orleans:DashboardPort to Silo:DashboardPort, and scripts that still pass the old key must keep their port.
/// </summary>
public sealed class SiloConfigurationTests
{
    [Fact]
    public void Dashboard_port_defaults_to_8080()
    {
        Assert.Equal(8080, SiloWebOptions.From(Configuration()).DashboardPort);
    }

    [Fact]
    public void Dashboard_port_is_read_from_the_silo_section()
    {
        Assert.Equal(18080, SiloWebOptions.From(Configuration(("Silo:DashboardPort", "18080"))).DashboardPort);
    }

    [Fact]
    public void The_old_Orleans_DashboardPort_key_still_sets_the_port()
    {
        Assert.Equal(18081, SiloWebOptions.From(Configuration(("Orleans:DashboardPort", "18081"))).DashboardPort);
    }

    [Fact]
    public void The_silo_section_wins_over_the_old_key()
    {
        var configuration = Configuration(("Orleans:DashboardPort", "18081"), ("Silo:DashboardPort", "18082"));
        Assert.Equal(18082, SiloWebOptions.From(configuration).DashboardPort);
    }

    /// <summary>
    /// As the silo's Program builds it (appsettings.json beside the assembly, then environment, then command line):
    /// the shipped appsettings.json must not hide a port given under either key.
    /// </summary>
    [Theory]
    [InlineData(new string[0], "http://127.0.0.1:8080")]
    [InlineData(new[] { "--Orleans:DashboardPort=18083" }, "http://127.0.0.1:18083")]
    [InlineData(new[] { "--Silo:DashboardPort=18084" }, "http://127.0.0.1:18084")]
    [InlineData(new[] { "--Orleans:DashboardPort=18083", "--Silo:DashboardPort=18084" }, "http://127.0.0.1:18084")]
    [InlineData(new[] { "--Silo:Dashboard:Port=18090" }, "http://127.0.0.1:8080;http://127.0.0.1:18090")]
    public void In_Development_the_web_app_listens_on_loopback_on_the_configured_ports(string[] args, string expectedUrls)
    {
        var builder = SiloBuilder(args, "Development");
        builder.UseDashboardUrl();
        Assert.Equal(expectedUrls, builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey));
    }

    /// <summary>Outside Development health is probed from other hosts (an orchestrator): every address.</summary>
    [Theory]
    [InlineData(new string[0], "http://*:8080")]
    [InlineData(new[] { "--Silo:DashboardPort=18084", "--Silo:Dashboard:Port=18090" }, "http://*:18084;http://*:18090")]
    public void Outside_Development_the_web_app_listens_on_every_address(string[] args, string expectedUrls)
    {
        var builder = SiloBuilder(args, "Production");
        builder.UseDashboardUrl();
        Assert.Equal(expectedUrls, builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey));
    }

    /// <summary>Orleans:AdvertisedIPAddress is what the membership table publishes; loopback is only Development's default.</summary>
    [Theory]
    [InlineData("Development", null, "127.0.0.1")]
    [InlineData("Production", null, null)]
    [InlineData("Production", "10.0.0.7", "10.0.0.7")]
    [InlineData("Development", "127.0.0.2", "127.0.0.2")]
    [InlineData("Production", "localhost", "127.0.0.1")]
    public void The_advertised_address_comes_from_configuration(string environment, string? configured, string? expected)
    {
        var builder = SiloBuilder(configured is null ? [] : [$"--Orleans:AdvertisedIPAddress={configured}"], environment);
        var options = builder.Configuration.GetSection(SiloClusterOptions.SectionName).Get<SiloClusterOptions>()!;
        Assert.Equal(expected, SiloHostingExtensions.AdvertisedAddress(options, builder.Environment)?.ToString());
        // Development binds the advertised loopback address only (appsettings.Development.json): a cluster client may
        // top up accounts, so its port is not opened to the network of a developer's machine.
        Assert.Equal(environment != "Development", options.ListenOnAnyHostAddress);
    }

    [Fact]
    public async Task Dashboard_options_from_the_container_use_the_same_fallback()
    {
        // Built, never started: no database or cluster is needed to resolve options.
        var builder = SiloBuilder(["--Orleans:DashboardPort=18085", "--ConnectionStrings:Billing=Host=127.0.0.1;Database=unused"]);
        builder.AddBillingSilo();
        await using var app = builder.Build();
        Assert.Equal(18085, app.Services.GetRequiredService<IOptions<SiloWebOptions>>().Value.DashboardPort);
    }

    [Fact]
    public async Task Idle_grains_are_collected_by_default_and_the_collection_is_configurable()
    {
        var builder = SiloBuilder(["--ConnectionStrings:Billing=Host=127.0.0.1;Database=unused", "--Orleans:GrainCollection:MemoryUsageLimitPercentage=90"]);
        builder.AddBillingSilo();
        await using var app = builder.Build();
        var options = app.Services.GetRequiredService<IOptions<Orleans.Configuration.GrainCollectionOptions>>().Value;
        Assert.Equal((TimeSpan.FromMinutes(10), true, 90d, 70d),
            (options.CollectionAge, options.EnableActivationSheddingOnMemoryPressure, options.MemoryUsageLimitPercentage, options.MemoryUsageTargetPercentage));
    }

    [Fact]
    public void Orleans_keys_stay_in_the_Orleans_section()
    {
        var options = new SiloClusterOptions();
        Configuration(("Orleans:ClusterId", "c1"), ("Orleans:ServiceId", "s1"), ("Orleans:SiloPort", "12000"), ("Orleans:GatewayPort", "31000"))
            .GetSection(SiloClusterOptions.SectionName).Bind(options);
        Assert.Equal(("c1", "s1", 12000, 31000), (options.ClusterId, options.ServiceId, options.SiloPort, options.GatewayPort));
    }

    private static IConfiguration Configuration(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, (string?)v.Value))).Build();

    /// <summary>The silo's own builder options (Silo/Program.cs): content root beside the assembly, where appsettings.json is.</summary>
    internal static WebApplicationBuilder SiloBuilder(string[] args, string environment = "Development") => WebApplication.CreateBuilder(new WebApplicationOptions
    {
        Args = args,
        EnvironmentName = environment,
        ContentRootPath = AppContext.BaseDirectory,
    });
}
