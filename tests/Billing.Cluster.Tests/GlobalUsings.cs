global using Billing.Cluster.Tests.Infrastructure;
global using Xunit;
global using Xunit.Abstractions;
