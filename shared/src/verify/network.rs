//! The service's network: subnets and security groups exist and belong to one VPC, and a
//! Fargate task has a way to pull its image (a public IP, a NAT gateway, or VPC endpoints).

use std::collections::BTreeSet;

use super::Check;
use super::subject::Network;
use crate::aws::Ctx;

pub async fn check(ctx: &Ctx, net: &Network) -> Vec<Check> {
    let mut checks = Vec::new();
    if net.subnets.is_empty() {
        return checks;
    }
    let ec2 = ctx.ec2();
    let subnets = match ec2
        .describe_subnets()
        .set_subnet_ids(Some(net.subnets.clone()))
        .send()
        .await
    {
        Ok(out) => out.subnets.unwrap_or_default(),
        Err(e) => {
            // EC2 names the missing id in the message (InvalidSubnetID.NotFound).
            checks.push(Check::failure(
                "network",
                net.subnets.join(","),
                format!(
                    "the subnets could not all be found: {}",
                    crate::error::flatten(&e)
                ),
            ));
            return checks;
        }
    };
    let vpcs: BTreeSet<String> = subnets
        .iter()
        .filter_map(|s| s.vpc_id().map(str::to_string))
        .collect();
    let subnet_list = net.subnets.join(",");
    if vpcs.len() > 1 {
        let by_vpc: Vec<String> = subnets
            .iter()
            .map(|s| {
                format!(
                    "{} in {}",
                    s.subnet_id().unwrap_or("?"),
                    s.vpc_id().unwrap_or("?")
                )
            })
            .collect();
        checks.push(Check::failure(
            "network",
            &subnet_list,
            format!(
                "the subnets belong to {} VPCs ({}): a service's subnets must share one VPC",
                vpcs.len(),
                by_vpc.join(", ")
            ),
        ));
    } else {
        checks.push(Check::ok(
            "network",
            &subnet_list,
            format!(
                "the subnets exist in {}",
                vpcs.iter().next().map(String::as_str).unwrap_or("one VPC")
            ),
        ));
    }
    if !net.security_groups.is_empty() {
        match ec2
            .describe_security_groups()
            .set_group_ids(Some(net.security_groups.clone()))
            .send()
            .await
        {
            Ok(out) => {
                for g in out.security_groups() {
                    let id = g.group_id().unwrap_or("?");
                    match g.vpc_id() {
                        Some(v) if vpcs.len() == 1 && !vpcs.contains(v) => {
                            checks.push(Check::failure(
                                "network",
                                id,
                                format!("the security group is in {v}, not in the subnets' VPC"),
                            ))
                        }
                        _ => checks.push(Check::ok("network", id, "the security group exists")),
                    }
                }
            }
            Err(e) => checks.push(Check::failure(
                "network",
                net.security_groups.join(","),
                format!(
                    "the security groups could not all be found: {}",
                    crate::error::flatten(&e)
                ),
            )),
        }
    }
    if net.fargate && !net.assign_public_ip && vpcs.len() == 1 {
        checks.push(
            pull_route(
                ctx,
                vpcs.iter().next().map(String::as_str).unwrap_or_default(),
                &net.subnets,
            )
            .await,
        );
    }
    checks
}

/// Without a public IP, a Fargate task pulls its image through a NAT gateway or through VPC
/// endpoints for ECR; neither is a hard error (a proxy may exist), so this is a warning.
async fn pull_route(ctx: &Ctx, vpc: &str, subnets: &[String]) -> Check {
    let ec2 = ctx.ec2();
    let filter = |name: &str, values: Vec<String>| {
        aws_sdk_ec2::types::Filter::builder()
            .name(name)
            .set_values(Some(values))
            .build()
    };
    let tables = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vec![vpc.to_string()]))
        .send()
        .await
        .map(|o| o.route_tables.unwrap_or_default())
        .unwrap_or_default();
    let nat = tables.iter().any(|t| {
        let serves = t.associations().iter().any(|a| {
            a.main() == Some(true)
                || a.subnet_id()
                    .is_some_and(|s| subnets.iter().any(|x| x == s))
        });
        serves
            && t.routes().iter().any(|r| {
                r.destination_cidr_block() == Some("0.0.0.0/0") && r.nat_gateway_id().is_some()
            })
    });
    if nat {
        return Check::ok(
            "network",
            vpc,
            "a NAT gateway gives the tasks a route to pull the image",
        );
    }
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(filter("vpc-id", vec![vpc.to_string()]))
        .send()
        .await
        .map(|o| o.vpc_endpoints.unwrap_or_default())
        .unwrap_or_default();
    if endpoints
        .iter()
        .any(|e| e.service_name().is_some_and(|n| n.ends_with(".ecr.dkr")))
    {
        return Check::ok(
            "network",
            vpc,
            "VPC endpoints for ECR let the tasks pull the image",
        );
    }
    Check::warning(
        "network",
        vpc,
        "Fargate tasks without a public IP need a NAT gateway or VPC endpoints (ecr.api, ecr.dkr, s3) to pull the image; none was found",
    )
}
